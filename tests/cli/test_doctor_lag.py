"""`guildkit doctor` on bot processes: how far behind each is, in changes and in seconds."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from guildkit.doctor import Check, Status, check_bot_processes
from guildkit.settings.process_status import ProcessRegistry
from guildkit.settings.store import SettingsStore


def _for(checks: list[Check], instance_id: str) -> Check:
    (check,) = [c for c in checks if c.name == f"bot {instance_id}"]
    return check


async def test_doctor_tells_up_to_date_catching_up_and_stuck_processes_apart(
    engine: AsyncEngine, store: SettingsStore, guild_id: int
) -> None:
    registry = ProcessRegistry(engine)
    written = await store.patch(guild_id, {"prefix": "?"}, actor="t")
    assert written.signal is not None
    seq = written.signal.change_seq
    current, catching_up = (f"test-{uuid.uuid4().hex[:8]}" for _ in range(2))
    for instance_id, applied in ((current, seq), (catching_up, seq - 1)):
        await registry.record(
            instance_id, shard_ids=(0,), shard_count=1, applied_change_seq=applied
        )
    try:
        checks = await check_bot_processes(engine)
        assert _for(checks, current).status is Status.OK
        assert "up to date" in _for(checks, current).detail
        # Committed a moment ago: behind, but within the 5 s bound.
        fresh = _for(checks, catching_up)
        assert fresh.status is Status.OK and "1 behind" in fresh.detail

        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE settings_history SET at = now() - interval '30 s' WHERE change_seq = :s"
                ),
                {"s": seq},
            )
        stuck = _for(await check_bot_processes(engine), catching_up)
        assert stuck.status is Status.WARN
        assert "1 behind" in stuck.detail and "committed 3" in stuck.detail  # ~30 s ago
        assert stuck.fix
    finally:
        await registry.remove(current)
        await registry.remove(catching_up)
