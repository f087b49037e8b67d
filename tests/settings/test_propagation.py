"""An edit reaches a reader in another process, on the healthy shared services."""

from __future__ import annotations

import random
import time

from redis.asyncio import Redis

from guildkit.settings.reader import Tier
from guildkit.settings.runtime import build_writing_side
from guildkit.settings.store import SettingsStore
from tests.conftest import BASE_REDIS_URL
from tests.settings.reader_proc import ReaderProcess


async def test_edits_reach_another_process_through_the_fast_paths(
    engine: object, store: SettingsStore, guild_id: int, database_url: str
) -> None:
    await store.patch(guild_id, {"prefix": "?"}, actor="setup")
    db = random.randint(1, 15)
    redis_url = f"{BASE_REDIS_URL}/{db}"
    reader = ReaderProcess(
        "--database-url",
        database_url,
        "--redis-url",
        redis_url,
        "--guild",
        str(guild_id),
        "--catchup-interval",
        "30",  # so only Pub/Sub or NOTIFY can deliver within the test
        "--wait-redis",
    )
    writing = build_writing_side(engine, redis_url=redis_url)  # type: ignore[arg-type]
    try:
        ready = await reader.start()
        assert sorted(ready["connected"]) == ["notify", "redis"]
        first = await reader.wait_for_version(guild_id, 1, 5)
        # Warmed from PostgreSQL at start, so the first read is already an L1 hit.
        assert first["prefix"] == "?" and first["tier"] == Tier.L1.value
        for i, prefix in enumerate(["a", "b", "c", "d", "e"], start=2):
            started = time.time()
            result = await writing.writer.patch(guild_id, {"prefix": prefix}, actor="test")
            assert result.current.version == i
            seen = await reader.wait_for_version(guild_id, i, 5)
            assert seen["prefix"] == prefix
            assert seen["t"] - started < 5
            assert reader.first_signal_path(guild_id, i) in {"redis", "notify"}
        versions = [e["version"] for e in reader.reads(guild_id)]
        assert versions == sorted(versions), "versions never go backwards"
        assert not reader.errors()
    finally:
        await reader.stop()
        await writing.close()


async def test_a_reader_starts_and_serves_without_redis(
    store: SettingsStore, guild_id: int, database_url: str
) -> None:
    await store.patch(guild_id, {"prefix": "%"}, actor="setup")
    reader = ReaderProcess(
        "--database-url",
        database_url,
        "--redis-url",
        "redis://127.0.0.1:1/0",  # nothing listens on port 1
        "--guild",
        str(guild_id),
        "--catchup-interval",
        "30",
    )
    try:
        await reader.start()
        first = await reader.wait_for_version(guild_id, 1, 5)
        assert first["prefix"] == "%"
        await store.patch(guild_id, {"prefix": "&"}, actor="test")  # NOTIFY only
        seen = await reader.wait_for_version(guild_id, 2, 5)
        assert seen["prefix"] == "&"
        assert reader.first_signal_path(guild_id, 2) == "notify"
        assert not reader.errors()
    finally:
        await reader.stop()


async def test_starts_with_empty_redis_and_fills_it(
    store: SettingsStore, guild_id: int, database_url: str
) -> None:
    await store.patch(guild_id, {"prefix": "+"}, actor="setup")
    db = random.randint(1, 15)
    client = Redis.from_url(f"{BASE_REDIS_URL}/{db}")
    await client.delete(f"guildkit:settings:{guild_id}")
    reader = ReaderProcess(
        "--database-url",
        database_url,
        "--redis-url",
        f"{BASE_REDIS_URL}/{db}",
        "--guild",
        str(guild_id),
    )
    try:
        await reader.start()
        first = await reader.wait_for_version(guild_id, 1, 5)
        assert first["prefix"] == "+"
    finally:
        await reader.stop()
        await client.aclose()
