"""XP in PostgreSQL: the UPSERT, its cooldown, level changes and standings."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from guildkit.bot.xp_store import XpStore


async def test_award_cooldown_and_level_up(engine: AsyncEngine, guild_id: int) -> None:
    store = XpStore(engine, cooldown=60)
    first = await store.award(guild_id, 1, 15)
    assert first is not None and (first.xp, first.level, first.levelled_up) == (15, 0, False)
    assert await store.award(guild_id, 1, 15) is None  # within the cooldown
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE member_xp SET xp = 95, last_awarded_at = now() - interval '2 minutes' "
                "WHERE guild_id = :g AND user_id = 1"
            ),
            {"g": guild_id},
        )
    award = await store.award(guild_id, 1, 15)
    assert award is not None and (award.xp, award.level, award.previous_level) == (110, 1, 0)
    assert award.levelled_up
    standing = await store.standing(guild_id, 1)
    assert standing is not None and (standing.xp, standing.level, standing.rank) == (110, 1, 1)


async def test_standing_ranks_members(engine: AsyncEngine, guild_id: int) -> None:
    store = XpStore(engine, cooldown=0)
    for user, times in ((1, 1), (2, 3), (3, 2)):
        for _ in range(times):
            await store.award(guild_id, user, 15)
    ranks = [(await store.standing(guild_id, u)) for u in (1, 2, 3)]
    assert [s.rank for s in ranks if s] == [3, 1, 2]
    assert await store.standing(guild_id, 99) is None
