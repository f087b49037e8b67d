"""Change signals into a reading process, three ways, applied idempotently by version (§2.4).

- Redis Pub/Sub: the fast path. A watchdog PINGs over the subscription and reconnects when the
  PONG does not come back, which catches a connection that died silently.
- PostgreSQL LISTEN/NOTIFY on a dedicated connection: works without Redis. Watched the same way.
- A periodic catch-up query on `change_seq`: repairs anything both paths lost. It also runs
  after every (re)connect of either path, since signals sent while it was down are gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from redis.asyncio import Redis
from redis.exceptions import RedisError

from guildkit.settings.applied import AppliedTracker
from guildkit.settings.lag import LagHistogram
from guildkit.settings.reader import DB_ERRORS, SettingsReader
from guildkit.settings.store import SettingsStore
from guildkit.settings.types import SIGNAL_CHANNEL_PG, SIGNAL_CHANNEL_REDIS, ChangeSignal

log = logging.getLogger(__name__)

PATH_REDIS = "redis"
PATH_NOTIFY = "notify"
PATH_CATCHUP = "catchup"


@dataclass
class ListenerStats:
    received: dict[str, int] = field(
        default_factory=lambda: {PATH_REDIS: 0, PATH_NOTIFY: 0, PATH_CATCHUP: 0}
    )
    malformed: int = 0
    # Commit to the moment this process learnt of a version it serves, by the path that
    # brought the news first (later copies of the same signal are not observed again).
    lag: dict[str, LagHistogram] = field(
        default_factory=lambda: {p: LagHistogram() for p in (PATH_REDIS, PATH_NOTIFY, PATH_CATCHUP)}
    )
    reconnects: dict[str, int] = field(default_factory=lambda: {PATH_REDIS: 0, PATH_NOTIFY: 0})
    catchups: int = 0


@dataclass(frozen=True)
class ListenerTiming:
    catchup_interval: float = 1.0
    watchdog_interval: float = 1.0
    watchdog_timeout: float = 1.0
    reconnect_backoff_max: float = 2.0


DEFAULT_TIMING = ListenerTiming()

ChangeObserver = Callable[[ChangeSignal, str], None]
ConnectionObserver = Callable[[str, bool], None]  # (path, connected)


class ChangeListener:
    def __init__(
        self,
        reader: SettingsReader,
        store: SettingsStore,
        *,
        pg_dsn: str,
        redis_factory: Callable[[], Redis] | None = None,
        timing: ListenerTiming = DEFAULT_TIMING,
        observers: list[ChangeObserver] | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._reader = reader
        self._store = store
        self._pg_dsn = pg_dsn
        self._redis_factory = redis_factory
        self._timing = timing
        self._observers = list(observers or [])
        self._wall_clock = wall_clock
        self._connection_observers: list[ConnectionObserver] = []
        self._tracker = AppliedTracker()
        self._catchup_now = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._ready: dict[str, asyncio.Event] = {}
        self.stats = ListenerStats()
        self.applied_changed = asyncio.Event()

    @property
    def applied_change_seq(self) -> int:
        return self._tracker.applied

    def add_observer(self, observer: ChangeObserver) -> None:
        self._observers.append(observer)

    def add_connection_observer(self, observer: ConnectionObserver) -> None:
        self._connection_observers.append(observer)

    def _notify_connection(self, path: str, connected: bool) -> None:
        for observer in self._connection_observers:
            try:
                observer(path, connected)
            except Exception:
                log.exception("settings connection observer failed")

    async def start(self) -> None:
        """Set the cursor to the current end of the log, then start all three paths.

        Call before warming the cache: whatever commits after the cursor is read is delivered
        by a signal or the catch-up, and whatever committed before it is in the warm-up read.
        """
        self._tracker = AppliedTracker(await self._store.latest_change_seq())
        loop = asyncio.get_running_loop()
        self._ready = {PATH_NOTIFY: asyncio.Event()}
        self._tasks = [
            loop.create_task(self._run_notify(), name="settings-listen-notify"),
            loop.create_task(self._run_catchup(), name="settings-catchup"),
        ]
        if self._redis_factory is not None:
            self._ready[PATH_REDIS] = asyncio.Event()
            self._tasks.append(loop.create_task(self._run_redis(), name="settings-listen-redis"))

    async def wait_connected(
        self, within: float = 5.0, paths: tuple[str, ...] = (PATH_NOTIFY,)
    ) -> bool:
        """Wait until the given signal paths have subscribed once. By default only NOTIFY:
        a process needs nothing but PostgreSQL to start, so nobody should wait for Redis."""
        try:
            async with asyncio.timeout(within):
                for path in paths:
                    if path in self._ready:
                        await self._ready[path].wait()
        except TimeoutError:
            return False
        return True

    def connected_paths(self) -> list[str]:
        return [path for path, event in self._ready.items() if event.is_set()]

    def request_catchup(self) -> None:
        self._catchup_now.set()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    # -- applying ---------------------------------------------------------------------------

    def apply(self, signal: ChangeSignal, path: str) -> None:
        self.stats.received[path] += 1
        floor = self._reader.version_floor(signal.guild_id)
        self._reader.note_version(signal.guild_id, signal.version)
        if floor is not None and signal.version > floor and signal.committed_at is not None:
            self.stats.lag[path].observe(self._wall_clock() - signal.committed_at)
        if self._tracker.signal_applied(signal.change_seq):
            self.applied_changed.set()
        for observer in self._observers:
            try:
                observer(signal, path)
            except Exception:
                log.exception("settings change observer failed")

    def _apply_raw(self, raw: str | bytes, path: str) -> None:
        try:
            signal = ChangeSignal.from_json(raw)
        except ValueError:
            self.stats.malformed += 1
            log.warning("ignoring malformed settings signal on %s: %r", path, raw[:200])
            return
        self.apply(signal, path)

    # -- catch-up ---------------------------------------------------------------------------

    async def catch_up(self) -> int:
        """Apply every change committed since the applied mark; returns how many."""
        total = 0
        while True:
            changes = await self._store.changes_since(self._tracker.applied)
            for signal in changes:
                self.apply(signal, PATH_CATCHUP)
            total += len(changes)
            if changes and self._tracker.caught_up_to(changes[-1].change_seq):
                self.applied_changed.set()
            if len(changes) < 10000:
                break
        self.stats.catchups += 1
        return total

    async def _run_catchup(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._timing.catchup_interval):
                    await self._catchup_now.wait()
            self._catchup_now.clear()
            try:
                await self.catch_up()
            except DB_ERRORS as exc:
                log.warning("settings catch-up failed (PostgreSQL unreachable?): %r", exc)

    # -- PostgreSQL LISTEN ------------------------------------------------------------------

    async def _run_notify(self) -> None:
        backoff = 0.1
        while True:
            conn: Any = None
            try:
                conn = await asyncpg.connect(
                    self._pg_dsn, timeout=self._timing.watchdog_timeout * 3
                )
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(
                    SIGNAL_CHANNEL_PG,
                    lambda _c, _pid, _ch, payload: self._apply_raw(payload, PATH_NOTIFY),
                )
                self._connected(PATH_NOTIFY)
                backoff = 0.1
                await self._watch_pg(conn, lost)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("settings LISTEN connection lost: %r; reconnecting", exc)
            finally:
                if conn is not None:
                    conn.terminate()
            self.stats.reconnects[PATH_NOTIFY] += 1
            self._notify_connection(PATH_NOTIFY, False)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._timing.reconnect_backoff_max)

    async def _watch_pg(self, conn: Any, lost: asyncio.Event) -> None:
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._timing.watchdog_interval):
                    await lost.wait()
            if lost.is_set():
                break
            async with asyncio.timeout(self._timing.watchdog_timeout):
                await conn.fetchval("SELECT 1")
        raise ConnectionError("LISTEN connection terminated")

    # -- Redis Pub/Sub ----------------------------------------------------------------------

    async def _run_redis(self) -> None:
        assert self._redis_factory is not None
        backoff = 0.1
        while True:
            client = self._redis_factory()
            pubsub: Any = client.pubsub()
            try:
                async with asyncio.timeout(self._timing.watchdog_timeout * 2):
                    await pubsub.subscribe(SIGNAL_CHANNEL_REDIS)
                    await self._confirmed(pubsub)
                self._connected(PATH_REDIS)
                backoff = 0.1
                await self._pump_redis(pubsub)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, TimeoutError, ConnectionError) as exc:
                log.warning("settings Pub/Sub connection lost: %r; reconnecting", exc)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                with contextlib.suppress(Exception):
                    await client.aclose()
            self.stats.reconnects[PATH_REDIS] += 1
            self._notify_connection(PATH_REDIS, False)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._timing.reconnect_backoff_max)

    @staticmethod
    async def _confirmed(pubsub: Any) -> None:
        # SUBSCRIBE is only sent by redis-py; the subscription exists once Redis confirms it.
        while True:
            message = await pubsub.get_message(timeout=0.1)
            if message is not None and message["type"] == "subscribe":
                return

    async def _pump_redis(self, pubsub: Any) -> None:
        interval = self._timing.watchdog_interval
        last_ping = time.monotonic()
        awaiting_pong_since: float | None = None
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=interval / 4)
            now = time.monotonic()
            if message is not None:
                if message["type"] == "message":
                    self._apply_raw(message["data"], PATH_REDIS)
                elif message["type"] == "pong":
                    awaiting_pong_since = None
            if awaiting_pong_since is not None:
                if now - awaiting_pong_since > self._timing.watchdog_timeout:
                    raise ConnectionError("Pub/Sub watchdog: no PONG, connection is dead")
            elif now - last_ping >= interval:
                last_ping = awaiting_pong_since = now
                async with asyncio.timeout(self._timing.watchdog_timeout):
                    await pubsub.ping()

    def _connected(self, path: str) -> None:
        first = not self._ready[path].is_set()
        self._ready[path].set()
        log.info("settings %s signal path %s", path, "connected" if first else "reconnected")
        self._notify_connection(path, True)
        # Signals sent while this path was down are lost: repair from the log.
        self.request_catchup()
