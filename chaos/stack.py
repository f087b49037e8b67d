"""The system under test: private PostgreSQL and Redis behind TCP proxies, the Discord stand-in
in-process, two `guildkit bot` processes (one shard each) and two `guildkit dashboard`
processes, each restartable after a kill."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from tests.support.postgres_server import PostgresServer
from tests.support.processes import ChildProcess, free_port
from tests.support.redis_server import RedisServer
from tests.support.tcp_proxy import TcpProxy

from guildkit.config import to_sqlalchemy_url
from guildkit.db.engine import create_engine
from guildkit.db.migrate import upgrade_to_head
from guildkit.sandbox.runner import RunningSandbox

SECRET_KEY = "chaos-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
BOT_READY = "bot ready as"
SHARD_COUNT = 2


async def migrate(libpq_url: str) -> None:
    engine = create_engine(to_sqlalchemy_url(libpq_url), pool_size=1)
    try:
        await upgrade_to_head(engine)
    finally:
        await engine.dispose()


@dataclass
class Managed:
    """A restartable child: `incarnation` counts starts; `log` keeps every incarnation's output."""

    name: str
    spawn: Callable[[], ChildProcess]
    child: ChildProcess | None = None
    incarnation: int = 0
    logs: list[list[str]] = field(default_factory=list)

    def start(self) -> ChildProcess:
        self.incarnation += 1
        self.child = self.spawn()
        self.logs.append(self.child.output)
        return self.child

    def kill(self) -> None:
        if self.child is not None:
            self.child.kill()

    def pause(self) -> None:
        if self.child is not None:
            self.child.pause()

    @property
    def pid(self) -> int | None:
        return self.child.pid if self.child is not None and self.child.alive() else None

    def write_logs(self, directory: Path) -> None:
        for i, lines in enumerate(self.logs, start=1):
            (directory / f"{self.name}.{i}.log").write_text("\n".join(lines) + "\n")


class Stack:
    def __init__(
        self, workdir: Path, *, memprobe_every: float = 0.0, tracemalloc: bool = False
    ) -> None:
        self.workdir = workdir
        # > 0: every bot and dashboard runs under chaos/memprobe.py, which records memory
        # statistics this often into workdir/memprobe; with `tracemalloc`, bot0 and dashboard0
        # also run tracemalloc and dump snapshots (heavy); the others only take the statistics.
        self.memprobe_every = memprobe_every
        self.tracemalloc = tracemalloc
        self.pg = PostgresServer()
        self.redis = RedisServer()
        self.pg.create_database("guildkit")
        self.db_url = self.pg.url_for("guildkit")
        # The bots reach Redis and PostgreSQL through proxies, so their Pub/Sub subscription
        # and LISTEN connection (and everything else of theirs) can be cut or black-holed.
        self.redis_proxy = TcpProxy(self.redis.host, self.redis.port).start_in_thread()
        self.pg_proxy = TcpProxy(self.pg.host, self.pg.port).start_in_thread()
        # Each dashboard's Redis too, so its publish after commit can be made to hang.
        self.dashboard_redis_proxies = [
            TcpProxy(self.redis.host, self.redis.port).start_in_thread() for _ in range(2)
        ]
        self.bots: list[Managed] = []
        self.dashboards: list[Managed] = []
        self.dashboard_urls: list[str] = []
        self.sandbox: RunningSandbox | None = None

    def child_env(self, sandbox: RunningSandbox, **extra: str) -> dict[str, str]:
        inherited = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("GUILDKIT_", "DATABASE_URL", "REDIS_URL", "DISCORD_"))
        }
        return {
            **inherited,
            "DISCORD_TOKEN": sandbox.bot_token,
            "DISCORD_CLIENT_ID": sandbox.client_id,
            "DISCORD_CLIENT_SECRET": sandbox.client_secret,
            "DISCORD_API_BASE": sandbox.api_base,
            "GUILDKIT_DATA_DIR": str(self.workdir / "data"),
            "GUILDKIT_SECRET_KEY": SECRET_KEY,
            **extra,
        }

    def define(self, sandbox: RunningSandbox) -> None:
        self.sandbox = sandbox
        for shard in range(SHARD_COUNT):
            env = self.child_env(
                sandbox,
                DATABASE_URL=self.pg_proxy.url("postgresql", "/guildkit", user="postgres"),
                REDIS_URL=self.redis_proxy.url("redis", "/0"),
                GUILDKIT_SHARD_IDS=str(shard),
                GUILDKIT_SHARD_COUNT=str(SHARD_COUNT),
                GUILDKIT_BOT_METRICS_PORT="0",
            )
            self.bots.append(
                Managed(f"bot{shard}", self._spawner("bot", env, frames=self._frames(shard)))
            )
        for i in range(2):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            env = self.child_env(
                sandbox,
                DATABASE_URL=self.db_url,
                REDIS_URL=self.dashboard_redis_proxies[i].url("redis", "/0"),
                GUILDKIT_HOST="127.0.0.1",
                GUILDKIT_PORT=str(port),
                GUILDKIT_PUBLIC_URL=url,
            )
            self.dashboards.append(
                Managed(f"dashboard{i}", self._spawner("dashboard", env, frames=self._frames(i)))
            )
            self.dashboard_urls.append(url)

    def _frames(self, index: int) -> int:
        return 6 if self.tracemalloc and index == 0 else 0

    def _spawner(
        self, command: str, env: dict[str, str], *, frames: int = 0
    ) -> Callable[[], ChildProcess]:
        cwd = self.workdir  # no stray .env from the checkout
        every = self.memprobe_every

        def spawn() -> ChildProcess:
            if every > 0:
                probe = Path(__file__).with_name("memprobe.py")
                out = self.workdir / "memprobe"
                args = [str(probe), str(out), str(every), str(frames), "guildkit.cli.main"]
                args.append(command)
                return ChildProcess([sys.executable, *args], env=env, cwd=cwd)
            return ChildProcess.python_module("guildkit.cli.main", command, env=env, cwd=cwd)

        return spawn

    async def start_bot(self, shard: int, within: float = 40.0) -> None:
        child = self.bots[shard].start()
        await child.wait_for_line_async(BOT_READY, timeout=within)

    async def start_dashboard(self, index: int, within: float = 40.0) -> None:
        self.dashboards[index].start()
        url = self.dashboard_urls[index] + "/healthz"
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(timeout=1.0) as client:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(url)).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"dashboard {index} not healthy in {within}s")
                await asyncio.sleep(0.1)

    def pids(self) -> dict[str, int | None]:
        out: dict[str, int | None] = {}
        for m in [*self.bots, *self.dashboards]:
            out[f"{m.name}#{m.incarnation}"] = m.pid
        out["redis"] = self.redis.pid if self.redis.running() else None
        out["postgres"] = self.pg.pid if self.pg.running() else None
        out["driver"] = os.getpid()
        return out

    def close(self) -> None:
        for m in [*self.bots, *self.dashboards]:
            with contextlib.suppress(Exception):
                m.kill()
        proxies = [self.redis_proxy, self.pg_proxy, *self.dashboard_redis_proxies]
        for closer in [*(p.close for p in proxies), self.redis.close, self.pg.close]:
            with contextlib.suppress(Exception):
                closer()


async def login(base_url: str, user_id: int) -> tuple[httpx.AsyncClient, str]:
    """A real browser-less OAuth2 login against the stand-in; the client keeps the cookie."""
    client = httpx.AsyncClient(base_url=base_url, follow_redirects=False, timeout=10.0)
    start = await client.get("/auth/login", params={"next": "/"})
    assert start.status_code == 302, start.text
    async with httpx.AsyncClient(follow_redirects=False) as browser:
        consent = await browser.get(f"{start.headers['location']}&sandbox_user={user_id}")
    assert consent.status_code == 302, consent.text
    back = urlsplit(consent.headers["location"])
    assert parse_qs(back.query).get("code"), consent.headers["location"]
    done = await client.get(f"{back.path}?{back.query}")
    assert done.status_code == 303, done.text
    session = await client.get("/api/session")
    assert session.status_code == 200, session.text
    csrf: Any = session.json()["csrf_token"]
    return client, str(csrf)
