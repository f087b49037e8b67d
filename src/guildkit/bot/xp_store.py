"""Member XP in PostgreSQL: one UPSERT per award, so nothing is lost when the bot dies."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from guildkit.bot.rules.levels import COOLDOWN_SECONDS, level_for_xp
from guildkit.db.schema import member_xp

# The cooldown is enforced by the row itself (the WHERE of the conflict update), so it holds
# across restarts and if two handlers race on the same member: only one of them gets a row back.
_AWARD = text(
    """
    INSERT INTO member_xp AS m (guild_id, user_id, xp, level, last_awarded_at)
    VALUES (:guild_id, :user_id, :amount, :level, now())
    ON CONFLICT (guild_id, user_id) DO UPDATE
        SET xp = m.xp + EXCLUDED.xp, last_awarded_at = now()
        WHERE m.last_awarded_at <= now() - make_interval(secs => :cooldown)
    RETURNING m.xp, m.level
    """
)


@dataclass(frozen=True)
class Award:
    xp: int
    level: int
    previous_level: int

    @property
    def levelled_up(self) -> bool:
        return self.level > self.previous_level


@dataclass(frozen=True)
class Standing:
    xp: int
    level: int
    rank: int


class XpStore:
    def __init__(self, engine: AsyncEngine, *, cooldown: float = COOLDOWN_SECONDS) -> None:
        self._engine = engine
        self._cooldown = cooldown

    async def award(self, guild_id: int, user_id: int, amount: int) -> Award | None:
        """Add `amount` unless the member earned XP within the cooldown (then None)."""
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(
                    _AWARD,
                    {
                        "guild_id": guild_id,
                        "user_id": user_id,
                        "amount": amount,
                        "level": level_for_xp(amount),
                        "cooldown": self._cooldown,
                    },
                )
            ).first()
            if row is None:
                return None
            xp, stored_level = int(row[0]), int(row[1])
            level = level_for_xp(xp)
            if level != stored_level:
                # Only on a level change (rare), so the common award stays one statement.
                await conn.execute(
                    update(member_xp)
                    .where(member_xp.c.guild_id == guild_id, member_xp.c.user_id == user_id)
                    .values(level=level)
                )
            return Award(xp=xp, level=level, previous_level=stored_level)

    async def standing(self, guild_id: int, user_id: int) -> Standing | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(member_xp.c.xp, member_xp.c.level).where(
                        member_xp.c.guild_id == guild_id, member_xp.c.user_id == user_id
                    )
                )
            ).first()
            if row is None:
                return None
            ahead = await conn.scalar(
                select(func.count())
                .select_from(member_xp)
                .where(member_xp.c.guild_id == guild_id, member_xp.c.xp > row.xp)
            )
            return Standing(xp=int(row.xp), level=int(row.level), rank=int(ahead or 0) + 1)
