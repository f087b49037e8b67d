"""The campaign: load from admins and members, a fault scheduler, and the records the oracle
judges. Everything runs on one event loop; blocking fault operations go to threads."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import pickle
import random
import re
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from tests.support.tcp_proxy import TcpProxy

from chaos import oracle
from chaos.stack import SHARD_COUNT, Stack, login, migrate
from guildkit.sandbox.client import SandboxClient
from guildkit.sandbox.events import GatewayEvent
from guildkit.sandbox.runner import RunningSandbox, run_sandbox

log = logging.getLogger("chaos")
ADMINISTRATOR = 1 << 3
REPLY_TIMEOUT = 10.0
PREFIXES = ["!", "?", "$", "%"]
LEVEL_UP = "\N{PARTY POPPER} <@"
# Faults §2.6 makes no promise about: what happens under them is reported, not counted.
OUTSIDE_CONTRACT = frozenset({"bot_pg_partition"})
# Memory witnesses: in the last WITNESS_SHARE of a full run no fault kills or restarts these,
# so one bot and one dashboard incarnation live long enough for the memory check to judge
# them (the other bot and dashboard keep being killed, so every fault kind still happens).
WITNESSES = ("bot1", "dashboard1")
WITNESS_SHARE = 0.6
# Full runs end with this long without new faults, so every report has healthy propagations
# to show (after recovery): a fault storm with 5-12 s gaps has almost none.
QUIET_TAIL = 60.0


def now() -> float:
    return time.monotonic()


@dataclass
class Options:
    minutes: float
    short: bool
    seed: int
    out: Path
    report: Path | None
    faults: tuple[str, ...] = ()  # only these fault kinds (prefixes); empty: all; "none"
    memprobe: float = 0.0  # > 0: bots and dashboards record memory statistics this often
    tracemalloc: bool = False  # and bot0/dashboard0 dump tracemalloc snapshots too


@dataclass
class GuildScene:
    id: int
    shard: int
    prefix: str
    general: int
    links: int
    anti_link: bool
    probe_channel: int = 0
    wake: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Records:
    t0: float = field(default_factory=now)
    acked: list[oracle.AckedEdit] = field(default_factory=list)
    http: list[oracle.HttpResult] = field(default_factory=list)
    decisions: list[oracle.Decision] = field(default_factory=list)
    commands: list[oracle.Command] = field(default_factory=list)
    faults: list[oracle.FaultWindow] = field(default_factory=list)
    observed: dict[tuple[int, int], float] = field(default_factory=dict)
    rss: dict[str, list[tuple[float, float]]] = field(default_factory=lambda: defaultdict(list))
    notes: list[str] = field(default_factory=list)
    edits_sent: int = 0
    edits_412: int = 0
    harness_errors: list[str] = field(default_factory=list)


class Inbox:
    """Sandbox events the bot caused, routed to whoever waits for them."""

    def __init__(self, bot_id: int) -> None:
        self.bot_id = bot_id
        self.replies: dict[int, asyncio.Future[float]] = {}
        self.deletes: dict[int, asyncio.Future[float]] = {}
        self.channel: dict[int, asyncio.Queue[tuple[float, str]]] = {}

    def __call__(self, event: GatewayEvent) -> None:
        t = now()
        data = event.data
        if event.name == "MESSAGE_CREATE" and int(data["author"]["id"]) == self.bot_id:
            ref = data.get("message_reference")
            if ref is not None:
                fut = self.replies.pop(int(ref["message_id"]), None)
                if fut is not None and not fut.done():
                    fut.set_result(t)
            queue = self.channel.get(int(data["channel_id"]))
            if queue is not None:
                queue.put_nowait((t, str(data.get("content") or "")))
        elif event.name == "MESSAGE_DELETE":
            fut = self.deletes.pop(int(data["id"]), None)
            if fut is not None and not fut.done():
                fut.set_result(t)


class Campaign:
    def __init__(self, options: Options) -> None:
        self.o = options
        self.rng = random.Random(options.seed)
        self.rec = Records()
        self.stop = asyncio.Event()
        self.workdir = options.out
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "data").mkdir(exist_ok=True)
        self.stack = Stack(
            self.workdir, memprobe_every=options.memprobe, tracemalloc=options.tracemalloc
        )
        self.guilds: list[GuildScene] = []
        self.sessions: dict[tuple[int, int], tuple[httpx.AsyncClient, str]] = {}
        self.admins: list[int] = []
        self.member = 0
        self.known_version: dict[int, int] = {}
        self.kill_after_ack: dict[int, asyncio.Future[float]] = {}
        self.kill_in_flight: dict[int, asyncio.Future[float]] = {}
        self.mid_publish_kills: list[tuple[int, float]] = []
        self.resources: set[str] = set()
        self.active: set[str] = set()
        self.snapshots: list[tuple[float, Path]] = []
        self.nonce_counter = 0
        self.pending: set[asyncio.Task[None]] = set()

    # -- set-up ------------------------------------------------------------------------------

    async def build_scene(self, sb: SandboxClient) -> None:
        owner = await sb.create_user("owner")
        self.admins = [owner.id]
        for name in ("alice-admin", "bob-admin"):
            self.admins.append((await sb.create_user(name)).id)
        self.member = (await sb.create_user("member")).id
        per_shard: dict[int, int] = defaultdict(int)
        index = 0
        while len(self.guilds) < 4:
            g = await sb.create_guild(f"chaos-{index}", owner.id)
            index += 1
            shard = (g.id >> 22) % SHARD_COUNT
            if per_shard[shard] >= 2:
                await sb.remove_bot(g.id)
                continue
            per_shard[shard] += 1
            role = await sb.create_role(g.id, "Admins", permissions=ADMINISTRATOR)
            for admin in self.admins[1:]:
                await sb.add_member(g.id, admin, [role.id])
            await sb.add_member(g.id, self.member)
            general = await sb.create_channel(g.id, "general")
            links = await sb.create_channel(g.id, "links")
            probe = await sb.create_channel(g.id, "probe")
            n = len(self.guilds)
            self.guilds.append(
                GuildScene(
                    id=g.id,
                    shard=shard,
                    prefix=PREFIXES[n],
                    general=general.id,
                    links=links.id,
                    anti_link=n % 2 == 0,
                    probe_channel=probe.id,
                )
            )

    def next_nonce(self, who: str) -> str:
        self.nonce_counter += 1
        return f"{who}-{self.nonce_counter}"

    def edit_body(self, guild: GuildScene, nonce: str) -> dict[str, Any]:
        rng = self.rng
        body: dict[str, Any] = {
            "custom_commands": [
                {"name": "probe", "response": f"probe {guild.id}#{nonce}"},
                {"name": "rules", "response": rng.choice(["Be kind.", "No spam.", "Read #faq"])},
            ]
        }
        if rng.random() < 0.5:
            body["welcome"] = {
                "enabled": rng.random() < 0.5,
                "message": f"Welcome {{user}} to {{server}}! ({nonce})",
            }
        if rng.random() < 0.4:
            body["moderation"] = {
                "blocked_words": rng.sample(
                    ["qzx", "vvw", "jjk", "frob", "zork"], rng.randint(0, 3)
                ),
                "spam_max_messages": rng.randint(2, 20),
                "spam_window_seconds": rng.randint(1, 60),
            }
        if rng.random() < 0.2:
            body["leveling"] = {"enabled": rng.random() < 0.5}
        return body

    async def initial_settings(self) -> None:
        owner = self.admins[0]
        client, csrf = self.sessions[(owner, 0)]
        for g in self.guilds:
            body = self.edit_body(g, "init")
            body["prefix"] = g.prefix
            body["moderation"] = {"anti_link": g.anti_link, "anti_spam": False}
            body["log_channel_id"] = str(g.general)
            r = await client.patch(
                f"/api/guilds/{g.id}/settings", json=body, headers={"X-CSRF-Token": csrf}
            )
            if r.status_code != 200:
                raise RuntimeError(f"initial settings for {g.id}: {r.status_code} {r.text}")
            version = int(r.json()["version"])
            self.known_version[g.id] = version
            self.rec.acked.append(oracle.AckedEdit(g.id, version, "init", now(), 0))

    # -- load ----------------------------------------------------------------------------------

    async def editor(self, admin: int) -> None:
        rng = self.rng
        while not self.stop.is_set():
            g = rng.choice(self.guilds)
            d = rng.randrange(len(self.stack.dashboards))
            client, csrf = self.sessions[(admin, d)]
            nonce = self.next_nonce(f"a{self.admins.index(admin)}")
            headers = {"X-CSRF-Token": csrf}
            if rng.random() < 0.3:
                headers["If-Match"] = f'"{self.known_version[g.id]}"'
            headers["Content-Type"] = rng.choice(
                ["application/json", "application/merge-patch+json"]
            )
            start = now()
            self.rec.edits_sent += 1
            armed_in_flight = self.kill_in_flight.pop(d, None)
            if armed_in_flight is not None:
                # Its publish to Redis hangs (black hole, ≤ 250 ms by §2.2): a kill 120 ms
                # into the request most likely lands after the commit and before the publish.
                asyncio.get_running_loop().call_later(
                    0.12, self._kill_dashboard_now, d, armed_in_flight
                )
            try:
                r = await client.patch(
                    f"/api/guilds/{g.id}/settings",
                    content=json.dumps(self.edit_body(g, nonce)),
                    headers=headers,
                    timeout=8.0,
                )
            except httpx.HTTPError as exc:
                self.rec.http.append(oracle.HttpResult(d, start, now(), None, type(exc).__name__))
            else:
                end = now()
                self.rec.http.append(oracle.HttpResult(d, start, end, r.status_code, r.text[:200]))
                if r.status_code == 200:
                    version = int(r.json()["version"])
                    self.rec.acked.append(oracle.AckedEdit(g.id, version, nonce, end, d))
                    self.known_version[g.id] = max(self.known_version[g.id], version)
                    g.wake.set()
                    armed = self.kill_after_ack.pop(d, None)
                    if armed is not None and not armed.done():
                        # Killed the instant its 200 is in: nothing after the response runs.
                        self.stack.dashboards[d].kill()
                        armed.set_result(now())
                elif r.status_code == 412:
                    self.rec.edits_412 += 1
                    await self.refresh_version(g, d, admin)
            await asyncio.sleep(rng.uniform(0.25, 1.0))

    def _kill_dashboard_now(self, d: int, fut: asyncio.Future[float]) -> None:
        self.stack.dashboards[d].kill()
        self.mid_publish_kills.append((d, now()))
        if not fut.done():
            fut.set_result(now())

    async def refresh_version(self, g: GuildScene, d: int, admin: int) -> None:
        client, _ = self.sessions[(admin, d)]
        start = now()
        try:
            r = await client.get(f"/api/guilds/{g.id}/settings", timeout=8.0)
        except httpx.HTTPError as exc:
            self.rec.http.append(oracle.HttpResult(d, start, now(), None, type(exc).__name__))
            return
        self.rec.http.append(oracle.HttpResult(d, start, now(), r.status_code, r.text[:200]))
        if r.status_code == 200:
            self.known_version[g.id] = max(self.known_version[g.id], int(r.json()["version"]))

    async def prober(self, sb: SandboxClient, inbox: Inbox, g: GuildScene) -> None:
        """One probe at a time per guild, so the order of decisions is the order of probes.
        A probe that times out retires its channel, so a late answer can't be misattributed."""
        queue: asyncio.Queue[tuple[float, str]] = asyncio.Queue()
        inbox.channel[g.probe_channel] = queue
        pattern = re.compile(rf"^probe {g.id}#(\S+)$")
        while not self.stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(g.wake.wait(), timeout=0.3)
            g.wake.clear()
            bot = self.stack.bots[g.shard]
            incarnation = bot.incarnation
            sent = now()
            try:
                await sb.post_message(g.probe_channel, self.member, f"{g.prefix}probe")
            except Exception as exc:  # the stand-in is ours: this is a harness problem
                self.rec.harness_errors.append(f"post probe: {exc!r}")
                await asyncio.sleep(0.5)
                continue
            try:
                replied, content = await asyncio.wait_for(next_reply(queue), timeout=REPLY_TIMEOUT)
            except TimeoutError:
                self.rec.commands.append(oracle.Command("probe", g.id, g.shard, sent, None))
                del inbox.channel[g.probe_channel]
                g.probe_channel = (await sb.create_channel(g.id, "probe")).id
                queue = asyncio.Queue()
                inbox.channel[g.probe_channel] = queue
                continue
            self.rec.commands.append(oracle.Command("probe", g.id, g.shard, sent, replied))
            match = pattern.match(content)
            same = bot.incarnation == incarnation and (bot.pid is not None)
            self.rec.decisions.append(
                oracle.Decision(
                    g.id,
                    g.shard,
                    incarnation if same else -1,
                    sent,
                    replied,
                    match.group(1) if match else f"<unexpected: {content[:80]}>",
                )
            )

    async def pinger(self, sb: SandboxClient, inbox: Inbox, g: GuildScene) -> None:
        loop = asyncio.get_running_loop()
        while not self.stop.is_set():
            await asyncio.sleep(self.rng.uniform(1.0, 2.5))
            sent = now()
            try:
                posted = await sb.post_message(g.general, self.member, f"{g.prefix}ping")
            except Exception as exc:
                self.rec.harness_errors.append(f"post ping: {exc!r}")
                continue
            fut: asyncio.Future[float] = loop.create_future()
            inbox.replies[posted.id] = fut
            self._spawn(self._await_answer("ping", g, sent, fut, inbox.replies, posted.id))

    async def linker(self, sb: SandboxClient, inbox: Inbox, g: GuildScene) -> None:
        loop = asyncio.get_running_loop()
        n = 0
        while not self.stop.is_set():
            await asyncio.sleep(self.rng.uniform(1.5, 3.5))
            n += 1
            sent = now()
            try:
                posted = await sb.post_message(
                    g.links, self.member, f"look at https://spam.example/{n}"
                )
            except Exception as exc:
                self.rec.harness_errors.append(f"post link: {exc!r}")
                continue
            fut: asyncio.Future[float] = loop.create_future()
            inbox.deletes[posted.id] = fut
            self._spawn(self._await_answer("link", g, sent, fut, inbox.deletes, posted.id))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def _await_answer(
        self,
        kind: str,
        guild: GuildScene,
        sent: float,
        fut: asyncio.Future[float],
        table: dict[int, asyncio.Future[float]],
        key: int,
    ) -> None:
        try:
            answered: float | None = await asyncio.wait_for(fut, timeout=REPLY_TIMEOUT + 5)
        except TimeoutError:
            answered = None
            table.pop(key, None)
        self.rec.commands.append(oracle.Command(kind, guild.id, guild.shard, sent, answered))

    async def observer(self) -> None:
        """Polls PostgreSQL directly (not through the bots' proxy): the first time each
        version is seen is an upper bound on its commit time."""
        dsn = self.stack.db_url
        conn: asyncpg.Connection | None = None
        latest: dict[int, int] = {}
        while not self.stop.is_set() or conn is None:
            try:
                if conn is None:
                    conn = await asyncpg.connect(dsn, timeout=2)
                rows = await conn.fetch("SELECT guild_id, version FROM guild_settings", timeout=2)
                t = now()
                for row in rows:
                    gid, version = int(row["guild_id"]), int(row["version"])
                    if version > latest.get(gid, 0):
                        latest[gid] = version
                        self.rec.observed[(gid, version)] = t
            except (OSError, asyncpg.PostgresError, TimeoutError, asyncpg.InterfaceError):
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.terminate()
                conn = None
                if self.stop.is_set():
                    break
            await asyncio.sleep(0.2)
        if conn is not None:
            await conn.close()

    async def sampler(self) -> None:
        every = 1.0 if self.o.short else 5.0
        while not self.stop.is_set():
            t = now()
            for name, pid in self.stack.pids().items():
                if pid is None:
                    continue
                mb = rss_mb(pid)
                if name == "postgres":
                    mb = sum(rss_mb(p) for p in [pid, *children(pid)])
                if mb > 0:
                    self.rec.rss[name].append((t, mb))
            await asyncio.sleep(every)

    async def snapshotter(self) -> None:
        """Redis snapshots to restore later ("restarted from an old snapshot")."""
        while not self.stop.is_set():
            await asyncio.sleep(6 if self.o.short else 15)
            if "redis" in self.resources:
                continue
            self.resources.add("redis")
            try:
                path = await asyncio.to_thread(self.stack.redis.snapshot)
                self.snapshots.append((now(), path))
            except Exception as exc:
                self.rec.notes.append(f"snapshot skipped: {exc!r}")
            finally:
                self.resources.discard("redis")

    # -- faults --------------------------------------------------------------------------------

    def fault_catalogue(
        self, sb: SandboxClient
    ) -> list[tuple[str, str, Callable[[float], Awaitable[None]]]]:
        st = self.stack

        async def redis_kill(hold: float) -> None:
            await asyncio.to_thread(st.redis.kill)
            await asyncio.sleep(hold)
            await asyncio.to_thread(st.redis.start)

        async def redis_pause(hold: float) -> None:
            await asyncio.to_thread(st.redis.pause)
            await asyncio.sleep(hold)
            await asyncio.to_thread(st.redis.resume)

        async def redis_flushall(hold: float) -> None:
            await asyncio.to_thread(st.redis.flushall)
            await asyncio.sleep(hold)

        async def redis_old_snapshot(hold: float) -> None:
            old = [p for t, p in self.snapshots if now() - t > 5] or [p for _, p in self.snapshots]
            if not old:
                await asyncio.to_thread(st.redis.restart)
            else:
                await asyncio.to_thread(st.redis.restart_from_snapshot, self.rng.choice(old))
            await asyncio.sleep(hold)

        def proxy_cut(proxy_name: str) -> Callable[[float], Awaitable[None]]:
            async def run(hold: float) -> None:
                await asyncio.to_thread(getattr(st, proxy_name).cut)
                await asyncio.sleep(hold)

            return run

        async def pubsub_blackhole(hold: float) -> None:
            # Only the bots' subscriptions go silent (the "silently dropped subscription");
            # like a real one they stay dead, found only by the listener's own watchdog.
            ports = await asyncio.to_thread(redis_subscriber_ports, st)
            n = await asyncio.to_thread(blackhole_ports, st.redis_proxy, ports)
            self.rec.notes.append(f"pubsub_blackhole: {n} subscription(s) silenced")
            await asyncio.sleep(hold)

        async def listen_blackhole(hold: float) -> None:
            ports = await listen_ports(st)
            n = await asyncio.to_thread(blackhole_ports, st.pg_proxy, ports)
            self.rec.notes.append(f"listen_blackhole: {n} LISTEN connection(s) silenced")
            await asyncio.sleep(hold)

        async def bot_pg_partition(hold: float) -> None:
            # Every bot connection to PostgreSQL, pooled ones too, silently dropped, then new
            # connections work again (the silenced ones stay dead). Not among §2.6's faults.
            await asyncio.to_thread(st.pg_proxy.blackhole)
            await asyncio.sleep(hold)
            await asyncio.to_thread(st.pg_proxy.restore)

        async def pg_restart(hold: float) -> None:
            await asyncio.to_thread(st.pg.restart, "fast")
            await asyncio.sleep(min(hold, 1.0))

        def bot_kill(shard: int) -> Callable[[float], Awaitable[None]]:
            async def run(hold: float) -> None:
                await asyncio.to_thread(st.bots[shard].kill)
                await asyncio.sleep(min(hold, 2.0))
                await st.start_bot(shard)

            return run

        def dashboard_kill_after_ack(index: int) -> Callable[[float], Awaitable[None]]:
            async def run(hold: float) -> None:
                fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
                self.kill_after_ack[index] = fut
                try:
                    await asyncio.wait_for(fut, timeout=10)
                except TimeoutError:
                    self.kill_after_ack.pop(index, None)
                    self.rec.notes.append(f"dashboard {index}: no ack to kill after; killed anyway")
                    await asyncio.to_thread(st.dashboards[index].kill)
                await asyncio.sleep(min(hold, 1.0))
                await st.start_dashboard(index)

            return run

        def dashboard_stop(index: int) -> Callable[[float], Awaitable[None]]:
            async def run(hold: float) -> None:
                # SIGSTOP with requests in flight (maybe between commit and publish), then
                # SIGKILL: whatever it had not published yet never will be.
                await asyncio.to_thread(st.dashboards[index].pause)
                await asyncio.sleep(min(hold, 4.0))
                await asyncio.to_thread(st.dashboards[index].kill)
                await st.start_dashboard(index)

            return run

        def dashboard_kill_mid_publish(index: int) -> Callable[[float], Awaitable[None]]:
            async def run(hold: float) -> None:
                proxy = st.dashboard_redis_proxies[index]
                await asyncio.to_thread(proxy.blackhole)
                fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
                self.kill_in_flight[index] = fut
                try:
                    await asyncio.wait_for(fut, timeout=10)
                except TimeoutError:
                    self.kill_in_flight.pop(index, None)
                    self.rec.notes.append(f"dashboard {index}: no request to kill; killed anyway")
                    await asyncio.to_thread(st.dashboards[index].kill)
                await asyncio.to_thread(proxy.restore)
                await asyncio.sleep(min(hold, 1.0))
                await st.start_dashboard(index)

            return run

        async def gateway_cut(hold: float) -> None:
            await sb.cut_gateway(refuse_seconds=min(hold, 2.0))
            await asyncio.sleep(hold)
            # The outage lasts until every shard is connected again, which can be long after
            # `hold`: discord.py backs off up to 2^n s between attempts and only resets its
            # back-off after ~34 min, so a second cut in a run often waits 8-16 s more.
            start = now()
            try:
                await sb.wait_for_gateway(SHARD_COUNT, timeout=30.0)
            except TimeoutError:
                self.rec.notes.append("gateway_cut: shards not all reconnected within 30 s")
            waited = now() - start
            if waited > 1.0:
                self.rec.notes.append(
                    f"gateway_cut: shards reconnected {waited:.0f} s after the refusal window"
                )

        faults: list[tuple[str, str, Callable[[float], Awaitable[None]]]] = [
            ("redis_kill", "redis", redis_kill),
            ("redis_sigstop", "redis", redis_pause),
            ("redis_flushall", "redis", redis_flushall),
            ("redis_old_snapshot", "redis", redis_old_snapshot),
            ("pubsub_cut", "redis_proxy", proxy_cut("redis_proxy")),
            ("pubsub_blackhole", "redis_proxy", pubsub_blackhole),
            ("listen_cut", "pg_proxy", proxy_cut("pg_proxy")),
            ("listen_blackhole", "pg_proxy", listen_blackhole),
            ("pg_restart", "pg", pg_restart),
            ("gateway_cut", "gateway", gateway_cut),
        ]
        if not self.o.short:
            # Beyond the contract: reported apart (OUTSIDE_CONTRACT); see the report's notes.
            faults.append(("bot_pg_partition", "pg_proxy", bot_pg_partition))
        for shard in range(SHARD_COUNT):
            faults.append((f"bot{shard}_kill", f"bot{shard}", bot_kill(shard)))
        for i in range(len(st.dashboards)):
            faults.append((f"dashboard{i}_kill", f"dashboard{i}", dashboard_kill_after_ack(i)))
            faults.append((f"dashboard{i}_stop", f"dashboard{i}", dashboard_stop(i)))
            faults.append(
                (f"dashboard{i}_kill_mid_publish", f"dashboard{i}", dashboard_kill_mid_publish(i))
            )
        return faults

    async def run_fault(
        self, kind: str, resource: str, action: Callable[[float], Awaitable[None]]
    ) -> None:
        hold = self.rng.uniform(2.0, 4.0) if self.o.short else self.rng.uniform(3.0, 8.0)
        self.resources.add(resource)
        self.active.add(kind)
        start = now()
        log.info("fault %s (hold %.1fs) at %.1f", kind, hold, start - self.rec.t0)
        try:
            await action(hold)
        except Exception as exc:
            self.rec.harness_errors.append(f"fault {kind}: {exc!r}")
            log.exception("fault %s failed", kind)
        finally:
            self.rec.faults.append(oracle.FaultWindow(kind, start, now()))
            self.resources.discard(resource)
            self.active.discard(kind)

    async def scheduler(self, sb: SandboxClient, until: float) -> None:
        catalogue = [
            entry
            for entry in self.fault_catalogue(sb)
            if not self.o.faults or entry[0].startswith(self.o.faults)
        ]
        order: list[tuple[str, str, Callable[[float], Awaitable[None]]]] = []
        running: set[asyncio.Task[None]] = set()
        spare_from = math.inf if self.o.short else until - (until - now()) * WITNESS_SHARE
        if not self.o.short and until - now() > 4 * QUIET_TAIL:
            until -= QUIET_TAIL
        await asyncio.sleep(3.0)
        if not catalogue:  # --faults none: load only (a soak)
            await asyncio.sleep(max(0.0, until - now()))
            return
        while now() < until:
            if now() >= spare_from:
                kept = [entry for entry in catalogue if entry[1] not in WITNESSES]
                if len(kept) < len(catalogue):
                    log.info("memory witnesses %s spared from now on", ", ".join(WITNESSES))
                    catalogue = kept
                    order = [entry for entry in order if entry[1] not in WITNESSES]
                if not catalogue:
                    await asyncio.sleep(max(0.0, until - now()))
                    break
            if not order:
                order = list(catalogue)
                self.rng.shuffle(order)
            kind, resource, action = order[0]
            if resource in self.resources or len(running) >= 2:
                await asyncio.sleep(0.2)
                # a busy resource: try another one later
                order.append(order.pop(0))
                continue
            order.pop(0)
            task = asyncio.create_task(self.run_fault(kind, resource, action))
            running.add(task)
            task.add_done_callback(running.discard)
            if self.rng.random() < 0.4:
                await asyncio.sleep(self.rng.uniform(0.5, 2.5))  # overlap the next one
            else:
                if running:
                    await asyncio.wait(running, timeout=max(0.1, until - now()))
                quiet = self.rng.uniform(2.0, 4.0) if self.o.short else self.rng.uniform(5.0, 12.0)
                await asyncio.sleep(quiet)
        if running:
            await asyncio.gather(*running)

    # -- the run -------------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        duration = 50.0 if self.o.short else self.o.minutes * 60
        await migrate(self.stack.db_url)
        async with run_sandbox(port=0) as sandbox, SandboxClient(sandbox.base_url) as sb:
            return await self._run(sandbox, sb, duration)

    async def _run(
        self, sandbox: RunningSandbox, sb: SandboxClient, duration: float
    ) -> dict[str, Any]:
        st = self.stack
        st.define(sandbox)
        await self.build_scene(sb)
        inbox = Inbox(await sb.bot_user_id())
        sandbox.state.listeners.append(inbox)
        await asyncio.gather(
            *(st.start_bot(s) for s in range(SHARD_COUNT)),
            *(st.start_dashboard(i) for i in range(len(st.dashboards))),
        )
        for admin in self.admins:
            for d, url in enumerate(st.dashboard_urls):
                self.sessions[(admin, d)] = await login(url, admin)
        await self.initial_settings()
        tasks = [asyncio.create_task(self.observer()), asyncio.create_task(self.sampler())]
        await self.wait_converged(sb, inbox, within=20.0, label="start")
        self.rec.t0 = now()
        tasks.append(asyncio.create_task(self.snapshotter()))
        for g in self.guilds:
            tasks.append(asyncio.create_task(self.prober(sb, inbox, g)))
            tasks.append(asyncio.create_task(self.pinger(sb, inbox, g)))
            if g.anti_link:
                tasks.append(asyncio.create_task(self.linker(sb, inbox, g)))
        for admin in self.admins:
            tasks.append(asyncio.create_task(self.editor(admin)))
        until = now() + duration
        scheduler = asyncio.create_task(self.scheduler(sb, until))
        await asyncio.sleep(max(0.0, until - now()))
        await scheduler  # lets the last faults recover
        self.stop.set()
        load_end = now()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(1.0)
        # After the last fault: every guild's last version must be served.
        converged = await self.wait_converged(sb, inbox, within=10.0, label="end")
        history = await self.read_history()
        for m in [*st.bots, *st.dashboards]:
            m.write_logs(self.workdir)
        self.rec.rss = dict(self.rec.rss)
        save_records(
            self.workdir / "records.pickle",
            (self.rec, history, load_end, converged, len(self.guilds)),
        )
        return self.summarise(history, load_end, converged)

    async def wait_converged(
        self, sb: SandboxClient, inbox: Inbox, *, within: float, label: str
    ) -> dict[int, float | None]:
        """Probe each guild until its reply carries the newest acknowledged edit."""
        result: dict[int, float | None] = {}
        latest = {e.guild: e for e in sorted(self.rec.acked, key=lambda e: e.version)}
        start = now()
        for g in self.guilds:
            channel = (await sb.create_channel(g.id, f"final-{label}")).id
            queue: asyncio.Queue[tuple[float, str]] = asyncio.Queue()
            inbox.channel[channel] = queue
            want = f"probe {g.id}#{latest[g.id].nonce}"
            result[g.id] = None
            while now() - start < within:
                await sb.post_message(channel, self.member, f"{g.prefix}probe")
                with contextlib.suppress(TimeoutError):
                    _, content = await asyncio.wait_for(next_reply(queue), timeout=2.0)
                    if content == want:
                        result[g.id] = now() - start
                        break
                await asyncio.sleep(0.2)
        missing = [g for g, t in result.items() if t is None]
        if missing:
            self.rec.notes.append(f"{label}: guilds {missing} not converged in {within}s")
        return result

    async def read_history(self) -> dict[tuple[int, int], str]:
        conn = await asyncpg.connect(self.stack.db_url)
        try:
            rows = await conn.fetch(
                "SELECT guild_id, version, after->'custom_commands' AS cc FROM settings_history"
            )
        finally:
            await conn.close()
        out: dict[tuple[int, int], str] = {}
        for row in rows:
            nonce = ""
            for command in json.loads(row["cc"] or "[]"):
                if command["name"] == "probe":
                    nonce = command["response"].split("#", 1)[1]
            out[(int(row["guild_id"]), int(row["version"]))] = nonce
        return out

    def summarise(
        self,
        history: dict[tuple[int, int], str],
        load_end: float,
        converged: dict[int, float | None],
    ) -> dict[str, Any]:
        rec = self.rec
        times = oracle.commit_times(rec.acked, [(g, v, t) for (g, v), t in rec.observed.items()])
        commits = [
            oracle.Commit(g, v, nonce, times.get((g, v), math.inf))
            for (g, v), nonce in history.items()
        ]
        verdict, (judged, under_faults) = oracle.judge(
            outside_contract=OUTSIDE_CONTRACT,
            commits=commits,
            acked=rec.acked,
            in_db=history,
            decisions=rec.decisions,
            commands=rec.commands,
            http=rec.http,
            faults=rec.faults,
            reply_timeout=REPLY_TIMEOUT,
        )
        not_converged = [g for g, t in converged.items() if t is None]
        families = [
            oracle.FaultWindow(re.sub(r"(bot|dashboard)\d", r"\1", f.kind), f.start, f.end)
            for f in rec.faults
        ]
        prop = oracle.propagation(
            rec.acked,
            commits,
            rec.decisions,
            families,
            horizon=load_end - oracle.BOUND,
            since=rec.t0,
        )
        duration = load_end - rec.t0
        # A run long enough for a witness to be judged must judge one of each.
        judgeable = (
            self.o.short is False
            and duration / 60 * WITNESS_SHARE >= oracle.MEMORY_MIN_MINUTES + 0.5
        )
        traced = (
            {n for n in rec.rss if n.startswith(("bot0#", "dashboard0#"))}
            if self.o.tracemalloc and self.o.memprobe > 0
            else set()
        )
        memory = {
            name: {
                **asdict(j.whole),
                "second_half_slope": (
                    j.second_half.slope_mb_per_min if j.second_half is not None else None
                ),
                "judged": j.judged,
                "violation": j.violation,
                "traced": name in traced,
            }
            for name, j in oracle.check_memory(
                rec.rss,
                verdict=verdict,
                require=oracle.JUDGED_PROCESSES if judgeable else (),
                exclude=traced,
            ).items()
        }
        fault_counts: dict[str, int] = defaultdict(int)
        for f in rec.faults:
            fault_counts[f.kind] += 1
        t0 = rec.t0
        slowest = oracle.slowest(rec.acked, commits, rec.decisions, rec.faults, t0=t0, n=10)
        slowest_quiet = {
            label: oracle.slowest(
                rec.acked, commits, rec.decisions, rec.faults, t0=t0, n=8, labels=[label]
            )
            for label in ("healthy", "recovering")
        }
        overlaps = sum(
            1
            for i, a in enumerate(rec.faults)
            for b in rec.faults[i + 1 :]
            if a.overlaps(b.start, b.end)
        )
        statuses: dict[str, int] = defaultdict(int)
        for r in rec.http:
            statuses[str(r.status) if r.status is not None else f"transport:{r.error}"] += 1
        return {
            "mode": "short" if self.o.short else "full",
            "seed": self.o.seed,
            "fault_filter": list(self.o.faults),
            "duration_s": round(load_end - t0, 1),
            "guilds": len(self.guilds),
            "edits_sent": rec.edits_sent,
            "edits_acked": len(rec.acked),
            "edits_412": rec.edits_412,
            "versions_in_db": len(history),
            "committed_unacknowledged": sorted(
                f"guild {g} v{v} ({history[(g, v)]})"
                for (g, v) in set(history) - {(e.guild, e.version) for e in rec.acked}
            ),
            "http_statuses": dict(statuses),
            "decisions": len(rec.decisions),
            "commands": {
                kind: {
                    "sent": sum(1 for c in rec.commands if c.kind == kind),
                    "answered": sum(1 for c in rec.commands if c.kind == kind and c.answered),
                }
                for kind in ("probe", "ping", "link")
            },
            "commands_judged_fault_free": judged,
            "commands_unanswered_under_faults": under_faults,
            "faults": dict(fault_counts),
            "fault_overlaps": overlaps,
            "fault_timeline": [
                {"kind": f.kind, "start": round(f.start - t0, 2), "end": round(f.end - t0, 2)}
                for f in sorted(rec.faults, key=lambda f: f.start)
            ],
            "violations": {
                "stale_decisions": verdict.stale,
                "unexplained_replies": verdict.unexplained,
                "versions_backwards": verdict.backwards,
                "acked_missing_from_db": verdict.missing_acked,
                "user_errors": verdict.user_errors,
                "missing_replies": verdict.missing_replies,
                "not_converged_at_end": [str(g) for g in not_converged],
                "harness_errors": rec.harness_errors,
                "memory_growth": verdict.memory,
            },
            "stale_under_overlapping_faults": verdict.stale_multi_fault,
            "missing_replies_under_overlapping_faults": verdict.missing_replies_multi_fault,
            "propagation": {
                label: {
                    "n": len(values),
                    "p50": oracle.percentile(values, 0.5),
                    "p99": oracle.percentile(values, 0.99),
                    "max": max(values),
                }
                for label, values in sorted(prop.items())
            },
            "memory": memory,
            "memory_bounds": {
                "warmup_s": oracle.MEMORY_WARMUP,
                "min_minutes": oracle.MEMORY_MIN_MINUTES,
                "max_slope": oracle.MEMORY_MAX_SLOPE,
                "required": judgeable,
                "witnesses": list(WITNESSES),
                "witness_share": WITNESS_SHARE,
            },
            "recovery_s": oracle.RECOVERY,
            "slowest_propagation": slowest,
            "slowest_quiet_propagation": slowest_quiet,
            "notes": [
                note if n == 1 else f"{note} (x{n})" for note, n in Counter(rec.notes).items()
            ],
        }


async def next_reply(queue: asyncio.Queue[tuple[float, str]]) -> tuple[float, str]:
    """The next bot message in a probe channel that is not a level-up announcement (edits
    turn leveling on and off, and its announcements go to the member's channel)."""
    while True:
        replied, content = await queue.get()
        if not content.startswith(LEVEL_UP):
            return replied, content


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def children(pid: int) -> list[int]:
    from tests.support.processes import child_pids

    return child_pids(pid)


def redis_subscriber_ports(stack: Stack) -> set[int]:
    """Local ports (as Redis sees them: the proxy's upstream side) of Pub/Sub subscribers."""
    client = stack.redis.client()
    try:
        clients = client.client_list()
    finally:
        client.close()
    return {
        int(str(c["addr"]).rsplit(":", 1)[1])
        for c in clients
        if int(c.get("sub", 0) or 0) + int(c.get("psub", 0) or 0) > 0
    }


async def listen_ports(stack: Stack) -> set[int]:
    """Client ports of the bots' LISTEN connections: the only ones without the pool's
    application_name (guildkit.db.engine sets it; the listener's own connect does not)."""
    conn = await asyncpg.connect(stack.db_url, timeout=5)
    try:
        rows = await conn.fetch(
            "SELECT client_port FROM pg_stat_activity WHERE backend_type = 'client backend' "
            "AND application_name = '' AND client_port IS NOT NULL AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    return {int(r["client_port"]) for r in rows}


def blackhole_ports(proxy: TcpProxy, ports: set[int]) -> int:
    """Silence only the proxied connections whose upstream side uses one of `ports`
    (reaches into TcpProxy, which can only silence everything)."""

    def run() -> int:
        n = 0
        for conn in proxy._conns:
            if conn.upstream is None:
                continue
            local = conn.upstream.get_extra_info("sockname")
            if local is not None and local[1] in ports:
                conn.blackholed = True
                n += 1
        return n

    return proxy._call(run)


def save_records(path: Path, records: object) -> None:
    with open(path, "wb") as fh:
        pickle.dump(records, fh)


def resummarise(options: Options, path: Path) -> dict[str, Any]:
    """Judge a finished run again from its records (for working on the oracle or report)."""
    with open(path, "rb") as fh:
        rec, history, load_end, converged, guilds = pickle.load(fh)
    campaign = Campaign.__new__(Campaign)
    campaign.o = options
    campaign.rec = rec
    campaign.guilds = [None] * guilds  # type: ignore[list-item]
    return campaign.summarise(history, load_end, converged)


async def run_campaign(options: Options) -> dict[str, Any]:
    campaign = Campaign(options)
    try:
        return await campaign.run()
    finally:
        await asyncio.gather(
            *(client.aclose() for client, _ in campaign.sessions.values()),
            return_exceptions=True,
        )
        campaign.stack.close()


def total_violations(summary: dict[str, Any]) -> int:
    return sum(len(v) for v in summary["violations"].values())


__all__ = ["Options", "run_campaign", "total_violations"]
