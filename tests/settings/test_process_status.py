"""Each reading process records the highest change_seq it has fully applied (DESIGN §2.9)."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy.ext.asyncio import AsyncEngine

from guildkit.config import to_asyncpg_dsn
from guildkit.settings.process_status import ProcessRegistry
from guildkit.settings.runtime import build_reading_side
from guildkit.settings.store import SettingsStore


async def wait_until_applied(
    registry: ProcessRegistry, instance_id: str, change_seq: int, within: float = 5.0
) -> int:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        rows = {p.instance_id: p for p in await registry.live()}
        if instance_id in rows and rows[instance_id].applied_change_seq >= change_seq:
            return rows[instance_id].applied_change_seq
        await asyncio.sleep(0.05)
    raise AssertionError(f"{instance_id} did not record change {change_seq} within {within}s")


async def test_applied_change_seq_is_recorded_and_follows_writes(
    engine: AsyncEngine, store: SettingsStore, guild_id: int, database_url: str
) -> None:
    side = build_reading_side(
        engine,
        pg_dsn=to_asyncpg_dsn(database_url),
        redis_url=None,
        instance_id=f"test-{guild_id}",
        shard_ids=(1, 3),
        shard_count=4,
    )
    registry = ProcessRegistry(engine)
    await side.start()
    try:
        await side.listener.wait_connected(5)
        first = await store.patch(guild_id, {"prefix": "?"}, actor="t")
        assert first.signal is not None
        await wait_until_applied(registry, f"test-{guild_id}", first.signal.change_seq)
        second = await store.patch(guild_id, {"prefix": "$"}, actor="t")
        assert second.signal is not None
        await wait_until_applied(registry, f"test-{guild_id}", second.signal.change_seq)
        (row,) = [p for p in await registry.live() if p.instance_id == f"test-{guild_id}"]
        assert (row.shard_ids, row.shard_count) == ((1, 3), 4)
    finally:
        await side.stop()
    assert f"test-{guild_id}" not in {p.instance_id for p in await registry.live()}


async def test_a_heartbeat_never_moves_the_mark_backwards(engine: AsyncEngine) -> None:
    registry = ProcessRegistry(engine)
    await registry.record("late-heartbeat", shard_ids=(0,), shard_count=1, applied_change_seq=50)
    await registry.record("late-heartbeat", shard_ids=(0,), shard_count=1, applied_change_seq=40)
    (row,) = [p for p in await registry.live() if p.instance_id == "late-heartbeat"]
    assert row.applied_change_seq == 50
    await registry.remove("late-heartbeat")


async def test_stale_heartbeats_are_not_live(engine: AsyncEngine) -> None:
    registry = ProcessRegistry(engine)
    await registry.record("crashed", shard_ids=(0,), shard_count=1, applied_change_seq=1)
    async with engine.begin() as conn:
        from sqlalchemy import text

        await conn.execute(
            text(
                "UPDATE bot_processes SET heartbeat_at = now() - interval '1 minute' "
                "WHERE instance_id = 'crashed'"
            )
        )
    assert "crashed" not in {p.instance_id for p in await registry.live(max_age_seconds=15)}
    await registry.remove("crashed")
