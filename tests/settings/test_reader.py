"""The bot's read path, L1 → L2 → PostgreSQL, on real PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import json

from redis.asyncio import Redis

from guildkit.settings.breaker import BreakerState
from guildkit.settings.publisher import InvalidationPublisher
from guildkit.settings.reader import SettingsReader, Tier
from guildkit.settings.redis_cache import RedisSettingsCache, key_for
from guildkit.settings.store import SettingsStore
from guildkit.settings.types import ChangeSignal
from guildkit.settings.writer import SettingsWriter
from tests.settings.helpers import CountingSource, FaultySource, GatedSource


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_cold_read_comes_from_postgres_then_l1(store: SettingsStore, guild_id: int) -> None:
    await store.patch(guild_id, {"prefix": "?"}, actor="t")
    source = CountingSource(store)
    reader = SettingsReader(source)
    first = await reader.get(guild_id)
    second = await reader.get(guild_id)
    assert (first.tier, first.version, first.settings.prefix) == (Tier.DB, 1, "?")
    assert (second.tier, second.version) == (Tier.L1, 1)
    assert source.gets == 1


async def test_empty_redis_is_filled_after_a_postgres_read(
    store: SettingsStore, l2: RedisSettingsCache, redis: Redis, guild_id: int
) -> None:
    await store.patch(guild_id, {"prefix": "?"}, actor="t")
    reader = SettingsReader(store, l2)
    assert (await reader.get(guild_id)).tier is Tier.DB
    for _ in range(50):
        if await redis.get(key_for(guild_id)):
            break
        await asyncio.sleep(0.02)
    cached = json.loads(await redis.get(key_for(guild_id)) or "null")
    assert cached["version"] == 1 and cached["settings"]["prefix"] == "?"
    await reader.aclose()


async def test_l1_expiry_is_served_from_redis_when_versions_agree(
    store: SettingsStore, l2: RedisSettingsCache, guild_id: int
) -> None:
    await store.patch(guild_id, {"prefix": "?"}, actor="t")
    await SettingsReader(store, l2).get(guild_id)  # another process filled Redis
    await asyncio.sleep(0.1)
    clock = ManualClock()
    source = CountingSource(store)
    reader = SettingsReader(source, l2, l1_ttl_seconds=10, clock=clock)
    assert (await reader.get(guild_id)).tier is Tier.DB, "unknown guild: Redis is not trusted"
    clock.now += 11
    read = await reader.get(guild_id)
    assert (read.tier, read.version) == (Tier.L2, 1)
    assert source.gets == 1


async def test_redis_holding_an_older_version_than_known_is_ignored(
    store: SettingsStore, l2: RedisSettingsCache, guild_id: int
) -> None:
    await store.patch(guild_id, {"prefix": "?"}, actor="t")
    await l2.fill(guild_id, 1, (await store.get(guild_id)).settings)
    clock = ManualClock()
    reader = SettingsReader(store, l2, l1_ttl_seconds=10, clock=clock)
    assert (await reader.get(guild_id)).version == 1
    await store.patch(guild_id, {"prefix": "$"}, actor="t")  # not published: Redis stays at v1
    assert reader.note_version(guild_id, 2)
    read = await reader.get(guild_id)
    assert (read.version, read.settings.prefix, read.tier) == (2, "$", Tier.DB)


async def test_stale_set_race_in_l1_is_fenced(store: SettingsStore, guild_id: int) -> None:
    """Reader loads v1; writer commits v2 and the signal arrives; the reader's v1 must not be
    installed, and the reader must answer with v2."""
    await store.patch(guild_id, {"prefix": "?"}, actor="t")
    source = GatedSource(store)
    reader = SettingsReader(source)
    slow_read = asyncio.create_task(reader.get(guild_id))
    await asyncio.wait_for(source.read_done.wait(), 5)  # v1 is in the reader's hands
    written = await store.patch(guild_id, {"prefix": "$"}, actor="t")
    assert written.signal is not None
    assert reader.note_version(guild_id, written.signal.version)
    source.gate.set()
    read = await asyncio.wait_for(slow_read, 5)
    assert (read.version, read.settings.prefix) == (2, "$")
    assert reader.cached_version(guild_id) == 2
    assert reader.stats.fenced_loads == 1
    again = await reader.get(guild_id)
    assert (again.tier, again.version) == (Tier.L1, 2)


async def test_stale_set_race_in_l2_keeps_the_tombstone(
    store: SettingsStore, l2: RedisSettingsCache, redis: Redis, guild_id: int
) -> None:
    """Reader loads v1; writer commits v2 and tombstones Redis; the reader's late fill of v1
    must be refused by the compare-by-version script."""
    writer = SettingsWriter(store, InvalidationPublisher(l2))
    await writer.patch(guild_id, {"prefix": "?"}, actor="t")
    source = GatedSource(store)
    reader = SettingsReader(source, l2)
    slow_read = asyncio.create_task(reader.get(guild_id))
    await asyncio.wait_for(source.read_done.wait(), 5)
    await writer.patch(guild_id, {"prefix": "$"}, actor="t")
    assert json.loads(await redis.get(key_for(guild_id)) or "null") == {
        "version": 2,
        "tombstone": True,
    }
    source.gate.set()
    await asyncio.wait_for(slow_read, 5)
    await asyncio.sleep(0.2)  # let the reader's background fill run
    assert not await l2.fill(guild_id, 1, (await store.get(guild_id)).settings)
    held = json.loads(await redis.get(key_for(guild_id)) or "null")
    assert held["version"] == 2, f"an old value replaced the tombstone: {held}"
    await reader.aclose()


async def test_compare_by_version_rules(
    store: SettingsStore, l2: RedisSettingsCache, redis: Redis, guild_id: int
) -> None:
    settings = (await store.get(guild_id)).settings
    key = key_for(guild_id)
    assert await l2.fill(guild_id, 3, settings)
    assert not await l2.fill(guild_id, 2, settings), "older value over newer"
    assert not await l2.fill(guild_id, 3, settings), "same version twice"
    await l2.tombstone_and_publish(ChangeSignal(guild_id, 3, 10**12))
    assert "settings" in json.loads(await redis.get(key) or "{}"), "tombstone v3 over value v3"
    await l2.tombstone_and_publish(ChangeSignal(guild_id, 4, 10**12 + 1))
    assert json.loads(await redis.get(key) or "{}") == {"version": 4, "tombstone": True}
    assert not await l2.fill(guild_id, 3, settings), "older value over newer tombstone"
    assert await l2.fill(guild_id, 4, settings), "value replaces tombstone of its version"
    await redis.set(key, "garbage")
    assert await l2.get(guild_id) is None, "garbage is a miss, never trusted"
    assert await l2.fill(guild_id, 1, settings), "garbage is replaced"


async def test_concurrent_readers_share_one_load(store: SettingsStore, guild_id: int) -> None:
    source = GatedSource(store)
    reader = SettingsReader(source)
    readers = [asyncio.create_task(reader.get(guild_id)) for _ in range(50)]
    await asyncio.wait_for(source.read_done.wait(), 5)
    source.gate.set()
    results = await asyncio.gather(*readers)
    assert source.gets == 1
    assert {r.version for r in results} == {0}


async def test_a_cancelled_reader_does_not_cancel_the_shared_load(
    store: SettingsStore, guild_id: int
) -> None:
    source = GatedSource(store)
    reader = SettingsReader(source)
    impatient = asyncio.create_task(reader.get(guild_id))
    patient = asyncio.create_task(reader.get(guild_id))
    await asyncio.wait_for(source.read_done.wait(), 5)
    impatient.cancel()
    source.gate.set()
    assert (await asyncio.wait_for(patient, 5)).version == 0


async def test_warm_loads_many_guilds_with_one_query(store: SettingsStore, guild_id: int) -> None:
    ids = [guild_id + i for i in range(1000)]
    await store.patch(ids[10], {"prefix": "?"}, actor="t")
    source = CountingSource(store)
    reader = SettingsReader(source)
    assert await reader.warm(ids) == 1000
    assert (source.get_manys, source.gets) == (1, 0)
    reads = [await reader.get(g) for g in ids]
    assert {r.tier for r in reads} == {Tier.L1}
    assert reads[10].settings.prefix == "?" and reads[11].version == 0
    assert source.gets == 0


async def test_postgres_failure_serves_the_held_copy_and_says_so(
    store: SettingsStore, guild_id: int
) -> None:
    clock = ManualClock()
    source = FaultySource(store)
    reader = SettingsReader(source, l1_ttl_seconds=1, clock=clock)
    await reader.get(guild_id)
    source.fault = "fail"
    clock.now += 5
    read = await reader.get(guild_id)
    assert read.tier is Tier.STALE and read.version == 0


async def test_after_a_postgres_failure_held_copies_are_served_without_waiting(
    store: SettingsStore, guild_id: int
) -> None:
    clock = ManualClock()
    source = FaultySource(store)
    reader = SettingsReader(source, l1_ttl_seconds=1, db_backoff_seconds=1.0, clock=clock)
    await reader.get(guild_id)
    source.fault = "fail"
    clock.now += 2
    assert (await reader.get(guild_id)).tier is Tier.STALE
    attempts = source.gets
    for _ in range(10):
        assert (await reader.get(guild_id)).tier is Tier.STALE
    assert source.gets == attempts, "no PostgreSQL attempt during the back-off"
    clock.now += 1.5
    source.fault = None
    assert (await reader.get(guild_id)).tier is Tier.DB, "retried once the back-off passed"


async def test_an_unresponsive_postgres_read_gives_up_at_the_deadline(
    store: SettingsStore, guild_id: int
) -> None:
    clock = ManualClock()
    source = FaultySource(store)
    reader = SettingsReader(source, l1_ttl_seconds=1, db_deadline_seconds=0.2, clock=clock)
    await reader.get(guild_id)
    source.fault = "hang"
    clock.now += 2
    # Without the deadline this read would never return; with it, the held copy is served.
    read = await asyncio.wait_for(reader.get(guild_id), 5)
    assert read.tier is Tier.STALE


async def test_open_breaker_means_no_more_waiting_on_a_hung_redis(
    store: SettingsStore, guild_id: int
) -> None:
    """A server that accepts connections and never answers: the worst Redis. Once the breaker
    has opened, reads must not send it anything, so they cannot be waiting on it."""
    received: list[int] = []

    async def swallow(reader_: asyncio.StreamReader, _writer: asyncio.StreamWriter) -> None:
        while data := await reader_.read(65536):
            received.append(len(data))

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    from guildkit.settings.redis_client import cache_client

    client = cache_client(f"redis://127.0.0.1:{port}/0", timeout=0.05)
    l2 = RedisSettingsCache(client, timeout=0.05)
    clock = ManualClock()
    reader = SettingsReader(store, l2, l1_ttl_seconds=1, clock=clock)
    try:
        await reader.get(guild_id)  # DB (unknown guild)
        for _ in range(5):  # expiries: each consults Redis until the breaker opens
            clock.now += 2
            assert (await reader.get(guild_id)).tier is Tier.DB
        assert l2.breaker.state is BreakerState.OPEN
        await asyncio.sleep(0.05)
        sent_before = sum(received)
        for _ in range(20):
            clock.now += 2
            assert (await reader.get(guild_id)).version == 0
        await asyncio.sleep(0.05)
        assert sum(received) == sent_before, "reads sent commands to Redis with the breaker open"
    finally:
        await reader.aclose()
        await client.aclose()
        server.close()
