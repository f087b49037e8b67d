"""The history check: writer and reader processes for a minute while faults are injected one
after another; every read is checked against the commit log (tests.settings.history_check)."""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections.abc import Callable

import asyncpg
import pytest

from guildkit.config import to_asyncpg_dsn
from tests.settings.history_check import check_history
from tests.settings.reader_proc import ReaderProcess
from tests.support.fixtures import ProxyFactory
from tests.support.postgres_server import PostgresServer
from tests.support.redis_server import RedisServer

BOUND = 5.0
WRITE_SECONDS = 60.0
READERS = 3
WRITERS = 2


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_a_minute_of_writes_reads_and_faults(
    redis_server: RedisServer, postgres_server: PostgresServer, tcp_proxy: ProxyFactory
) -> None:
    db_url = postgres_server.url_for("guildkit")
    pubsub_proxy = tcp_proxy("127.0.0.1", redis_server.port)
    listen_proxy = tcp_proxy("127.0.0.1", postgres_server.port)
    guilds = [str(random.randint(10**17, 10**18)) for _ in range(3)]
    guild_args = [arg for g in guilds for arg in ("--guild", g)]

    readers = [
        ReaderProcess(
            "--database-url",
            db_url,
            "--redis-url",
            redis_server.url,
            "--pubsub-url",
            pubsub_proxy.url("redis", "/0"),
            "--listen-database-url",
            listen_proxy.url("postgresql", "/guildkit", user="postgres"),
            "--l1-ttl",
            "0.5",
            "--wait-redis",
            *guild_args,
        )
        for _ in range(READERS)
    ]
    writers = [
        ReaderProcess.module(
            "tests.support.writer_process",
            "--database-url",
            db_url,
            "--redis-url",
            redis_server.url,
            "--duration",
            str(WRITE_SECONDS),
            "--rate",
            "8",
            "--seed",
            str(i),
            "--actor",
            f"writer-{i}",
            *guild_args,
        )
        for i in range(WRITERS)
    ]
    snapshot = None

    def take_snapshot() -> None:
        nonlocal snapshot
        snapshot = redis_server.snapshot()

    def restore_snapshot() -> None:
        assert snapshot is not None
        redis_server.restart_from_snapshot(snapshot)

    schedule: list[tuple[float, str, Callable[[], object]]] = [
        (3, "snapshot Redis", take_snapshot),
        (5, "kill Redis", redis_server.kill),
        (8, "start Redis (empty)", redis_server.start),
        (11, "hang Redis (SIGSTOP)", redis_server.pause),
        (14, "resume Redis", redis_server.resume),
        (17, "FLUSHALL", redis_server.flushall),
        (20, "restart Redis from an old snapshot", restore_snapshot),
        (24, "black-hole Pub/Sub", pubsub_proxy.blackhole),
        (28, "restore Pub/Sub", pubsub_proxy.restore),
        (31, "black-hole LISTEN", listen_proxy.blackhole),
        (35, "restore LISTEN", listen_proxy.restore),
        (38, "restart PostgreSQL", postgres_server.restart),
        (43, "cut Pub/Sub connections", pubsub_proxy.cut),
        (46, "hang Redis (SIGSTOP)", redis_server.pause),
        (49, "resume Redis", redis_server.resume),
        (52, "restart PostgreSQL", postgres_server.restart),
        (55, "kill Redis", redis_server.kill),
        (57, "start Redis (empty)", redis_server.start),
    ]
    try:
        await asyncio.gather(*(r.start() for r in readers))
        await asyncio.gather(*(w.start() for w in writers))
        started = time.monotonic()
        for at, name, action in schedule:
            await asyncio.sleep(max(0.0, started + at - time.monotonic()))
            print(f"t={time.monotonic() - started:5.1f}s fault: {name}")
            await asyncio.to_thread(action)
        await asyncio.gather(
            *(w.wait_for(lambda e: e["event"] == "done", WRITE_SECONDS + 30) for w in writers)
        )
        await asyncio.sleep(BOUND + 1)  # every reader must have converged by now
    finally:
        stopped_at = {f"reader-{i}": time.time() for i in range(len(readers))}
        for process in [*writers, *readers]:
            await process.stop()

    acks = [e for w in writers for e in w.events if e["event"] == "ack"]
    conn = await asyncpg.connect(to_asyncpg_dsn(db_url))
    try:
        committed = {
            (str(r["guild_id"]), r["version"])
            for r in await conn.fetch("SELECT guild_id, version FROM settings_history")
        }
        final = {
            str(r["guild_id"]): r["version"]
            for r in await conn.fetch("SELECT guild_id, version FROM guild_settings")
        }
    finally:
        await conn.close()

    missing = [a for a in acks if (a["guild"], a["version"]) not in committed]
    verdict = check_history(
        acks,
        {f"reader-{i}": r.events for i, r in enumerate(readers)},
        final,
        bound=BOUND,
        stopped_at=stopped_at,
    )
    lags = sorted(verdict.propagation)
    print(
        f"{len(acks)} acknowledged writes, {len(committed)} commits, "
        f"{sum(1 for w in writers for e in w.events if e['event'] == 'write_error')} refused "
        f"during faults; propagation p50 {statistics.median(lags) * 1000:.0f} ms, "
        f"p99 {lags[int(len(lags) * 0.99)] * 1000:.0f} ms, max {lags[-1] * 1000:.0f} ms"
    )
    assert len(acks) > 200, "the writers must actually have written"
    assert not missing, f"acknowledged edits missing from PostgreSQL: {missing[:5]}"
    assert not verdict.violations, "\n".join(verdict.violations[:20])
    # Every acknowledged commit was judged for every reader (all deadlines precede the stop).
    assert len(verdict.propagation) == len(acks) * READERS
