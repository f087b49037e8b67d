"""Every fault of DESIGN §2.6, each its own test: a reader in another process must serve an
edit within 5 s, never go backwards, and never fail a read. Faults are real and injected into
this test's own redis-server / PostgreSQL or through a TCP proxy, never the shared services."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from guildkit.config import to_sqlalchemy_url
from guildkit.db.engine import create_engine
from guildkit.settings.runtime import WritingSide, build_writing_side
from tests.settings.reader_proc import ReaderProcess
from tests.support.fixtures import ProxyFactory
from tests.support.postgres_server import PostgresServer
from tests.support.redis_server import RedisServer

BOUND = 5.0  # seconds: DESIGN §2.6


@dataclass
class Rig:
    guild_id: int
    writing: WritingSide
    reader: ReaderProcess

    async def write(self, prefix: str) -> int:
        result = await self.writing.writer.patch(self.guild_id, {"prefix": prefix}, actor="fault")
        return result.current.version

    async def expect(self, version: int, prefix: str) -> None:
        seen = await self.reader.wait_for_version(self.guild_id, version, BOUND)
        assert (seen["version"], seen["prefix"]) == (version, prefix)

    def assert_sound(self) -> None:
        versions = [e["version"] for e in self.reader.reads(self.guild_id)]
        assert versions == sorted(versions), f"versions went backwards: {versions}"
        assert not self.reader.errors(), self.reader.errors()


@pytest.fixture
async def rig_factory(database_url: str, guild_id: int) -> AsyncIterator[object]:
    created: list[tuple[Rig, AsyncEngine]] = []

    async def make(
        *,
        redis_url: str | None,
        pubsub_url: str | None = None,
        listen_url: str | None = None,
        db_url: str = database_url,
        catchup_interval: float = 1.0,
        l1_ttl: float = 0.3,
    ) -> Rig:
        engine = create_engine(to_sqlalchemy_url(db_url), pool_size=2)
        writing = build_writing_side(engine, redis_url=redis_url)
        args = [
            "--database-url",
            db_url,
            "--guild",
            str(guild_id),
            "--catchup-interval",
            str(catchup_interval),
            "--l1-ttl",
            str(l1_ttl),
        ]
        if redis_url:
            args += ["--redis-url", redis_url, "--wait-redis"]
        if pubsub_url:
            args += ["--pubsub-url", pubsub_url]
        if listen_url:
            args += ["--listen-database-url", listen_url]
        rig = Rig(guild_id, writing, ReaderProcess(*args))
        created.append((rig, engine))
        version = await rig.write("0")
        await rig.reader.start()
        await rig.expect(version, "0")
        return rig

    yield make
    for rig, engine in created:
        await rig.reader.stop()
        await rig.writing.close()
        await engine.dispose()


async def redis_holds_value(server: RedisServer, guild_id: int, version: int) -> None:
    """Wait until a reader has filled Redis with this version's value (not a tombstone)."""
    client = server.client()
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        raw = await asyncio.to_thread(client.get, f"guildkit:settings:{guild_id}")
        held = json.loads(str(raw)) if raw else {}
        if held.get("version") == version and "settings" in held:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"Redis never held version {version} of guild {guild_id}")


async def test_redis_killed(rig_factory: object, redis_server: RedisServer) -> None:
    rig: Rig = await rig_factory(redis_url=redis_server.url)  # type: ignore[operator]
    await asyncio.to_thread(redis_server.kill)
    await rig.expect(await rig.write("a"), "a")
    await rig.expect(await rig.write("b"), "b")
    await asyncio.to_thread(redis_server.start)  # comes back empty
    await rig.expect(await rig.write("c"), "c")
    rig.assert_sound()


async def test_redis_hung(rig_factory: object, redis_server: RedisServer) -> None:
    rig: Rig = await rig_factory(redis_url=redis_server.url)  # type: ignore[operator]
    await asyncio.to_thread(redis_server.pause)
    try:
        # The dashboard's write must not fail or hang because Redis does (bounded publish).
        version = await asyncio.wait_for(rig.write("a"), BOUND)
        await rig.expect(version, "a")
        await rig.expect(await rig.write("b"), "b")
    finally:
        await asyncio.to_thread(redis_server.resume)
    await rig.expect(await rig.write("c"), "c")
    rig.assert_sound()


async def test_redis_flushed(rig_factory: object, redis_server: RedisServer) -> None:
    rig: Rig = await rig_factory(redis_url=redis_server.url)  # type: ignore[operator]
    await rig.expect(await rig.write("a"), "a")
    await asyncio.to_thread(redis_server.flushall)
    await asyncio.sleep(0.5)  # L1 expires: reads go to the emptied Redis, then PostgreSQL
    await rig.expect(await rig.write("b"), "b")
    await asyncio.to_thread(redis_server.flushall)
    await rig.expect(await rig.write("c"), "c")
    rig.assert_sound()


async def test_redis_restarted_from_an_old_snapshot(
    rig_factory: object, redis_server: RedisServer, database_url: str, guild_id: int
) -> None:
    rig: Rig = await rig_factory(redis_url=redis_server.url)  # type: ignore[operator]
    await redis_holds_value(redis_server, guild_id, 1)  # the reader filled Redis on L1 expiry
    old = await asyncio.to_thread(redis_server.snapshot)
    await rig.expect(await rig.write("new"), "new")
    await redis_holds_value(redis_server, guild_id, 2)
    # The snapshot was taken while Redis held version 1 (waited for above), so Redis now comes
    # back stale; readers may overwrite the key right away, so it is not read back here.
    await asyncio.to_thread(redis_server.restart_from_snapshot, old)
    await asyncio.sleep(1.0)  # several L1 expiries against the stale Redis
    rig.assert_sound()
    assert rig.reader.reads(guild_id)[-1]["prefix"] == "new"
    # A process that starts now must not believe the snapshot either.
    fresh = ReaderProcess(
        "--database-url",
        database_url,
        "--redis-url",
        redis_server.url,
        "--guild",
        str(guild_id),
        "--l1-ttl",
        "0.3",
    )
    try:
        await fresh.start()
        seen = await fresh.wait_for_version(guild_id, 2, BOUND)
        assert seen["prefix"] == "new"
        await asyncio.sleep(1.0)
        assert [e["version"] for e in fresh.reads(guild_id)] == [2]
    finally:
        await fresh.stop()
    await rig.expect(await rig.write("after"), "after")
    rig.assert_sound()


async def test_pubsub_silently_black_holed(
    rig_factory: object, redis_server: RedisServer, tcp_proxy: ProxyFactory
) -> None:
    proxy = tcp_proxy("127.0.0.1", redis_server.port)
    rig: Rig = await rig_factory(  # type: ignore[operator]
        redis_url=redis_server.url, pubsub_url=proxy.url("redis", "/0")
    )
    await asyncio.to_thread(proxy.blackhole)
    await rig.expect(await rig.write("a"), "a")
    # The watchdog notices the dead subscription (no PONG) and reconnects.
    dropped = await rig.reader.wait_for_connection("redis", False, BOUND)
    await asyncio.to_thread(proxy.restore)
    await rig.reader.wait_for_connection("redis", True, BOUND, after=dropped)
    version = await rig.write("b")
    await rig.expect(version, "b")
    # The re-established subscription itself delivers again, not only NOTIFY.
    await rig.reader.wait_for(
        lambda e: e["event"] == "signal" and e["path"] == "redis" and e["version"] == version,
        BOUND,
    )
    rig.assert_sound()


async def test_listen_connection_silently_black_holed(
    rig_factory: object,
    redis_server: RedisServer,
    tcp_proxy: ProxyFactory,
    postgres_server: PostgresServer,
) -> None:
    db_url = postgres_server.url_for("guildkit")
    proxy = tcp_proxy("127.0.0.1", postgres_server.port)
    rig: Rig = await rig_factory(  # type: ignore[operator]
        redis_url=redis_server.url,
        db_url=db_url,
        listen_url=proxy.url("postgresql", "/guildkit", user="postgres"),
    )
    await asyncio.to_thread(proxy.blackhole)
    await rig.expect(await rig.write("a"), "a")
    dropped = await rig.reader.wait_for_connection("notify", False, BOUND)
    await asyncio.to_thread(proxy.restore)
    await rig.reader.wait_for_connection("notify", True, BOUND, after=dropped)
    await rig.expect(await rig.write("b"), "b")
    rig.assert_sound()


async def test_both_signal_paths_dead_catch_up_repairs(
    rig_factory: object,
    redis_server: RedisServer,
    tcp_proxy: ProxyFactory,
    postgres_server: PostgresServer,
) -> None:
    """Two faults at once, beyond the single-fault promise: the periodic catch-up alone must
    still deliver the edit within the bound."""
    db_url = postgres_server.url_for("guildkit")
    pg_proxy = tcp_proxy("127.0.0.1", postgres_server.port)
    redis_proxy = tcp_proxy("127.0.0.1", redis_server.port)
    rig: Rig = await rig_factory(  # type: ignore[operator]
        redis_url=redis_server.url,
        db_url=db_url,
        pubsub_url=redis_proxy.url("redis", "/0"),
        listen_url=pg_proxy.url("postgresql", "/guildkit", user="postgres"),
        l1_ttl=300.0,  # no L1 expiry, so the Redis tombstone cannot tell the reader either
    )
    await asyncio.to_thread(pg_proxy.blackhole)
    await asyncio.to_thread(redis_proxy.blackhole)
    version = await rig.write("a")
    await rig.expect(version, "a")
    assert rig.reader.first_signal_path(rig.guild_id, version) == "catchup"
    rig.assert_sound()


async def test_postgres_restarted(
    rig_factory: object, redis_server: RedisServer, postgres_server: PostgresServer
) -> None:
    rig: Rig = await rig_factory(  # type: ignore[operator]
        redis_url=redis_server.url, db_url=postgres_server.url_for("guildkit")
    )
    await asyncio.to_thread(postgres_server.restart)
    await rig.expect(await rig.write("a"), "a")
    dropped = await rig.reader.wait_for_connection("notify", False, BOUND)
    await rig.reader.wait_for_connection("notify", True, BOUND, after=dropped)
    await rig.expect(await rig.write("b"), "b")
    rig.assert_sound()


async def test_postgres_restarted_without_redis(
    rig_factory: object, postgres_server: PostgresServer
) -> None:
    rig: Rig = await rig_factory(  # type: ignore[operator]
        redis_url=None, db_url=postgres_server.url_for("guildkit")
    )
    await asyncio.to_thread(postgres_server.restart)
    await rig.expect(await rig.write("a"), "a")
    await rig.expect(await rig.write("b"), "b")
    rig.assert_sound()


async def test_postgres_hung_reads_keep_being_served(
    rig_factory: object, redis_server: RedisServer, postgres_server: PostgresServer
) -> None:
    """SIGSTOPped PostgreSQL: reads keep coming from held copies (L1 expiring every 0.3 s),
    nothing errors, and once it resumes the next edit arrives within the bound."""
    rig: Rig = await rig_factory(  # type: ignore[operator]
        redis_url=redis_server.url, db_url=postgres_server.url_for("guildkit")
    )
    await asyncio.to_thread(postgres_server.pause)
    try:
        await asyncio.sleep(3.0)
    finally:
        await asyncio.to_thread(postgres_server.resume)
    assert rig.reader.proc is not None and rig.reader.proc.returncode is None
    await rig.expect(await rig.write("a"), "a")
    rig.assert_sound()
