"""Leveling: XP per member per message (60 s cooldown) in PostgreSQL, level-ups, `rank`."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import discord
from discord.ext import commands

from guildkit.bot.extensions._base import guildkit_bot
from guildkit.bot.rules.levels import COOLDOWN_SECONDS, XP_PER_MESSAGE, progress
from guildkit.bot.services import BotServices
from guildkit.bot.xp_store import Standing, XpStore
from guildkit.settings.reader import DB_ERRORS

log = logging.getLogger(__name__)


class Cooldowns:
    """In-process memory of recent awards, so most messages cost no PostgreSQL round trip.

    Only an optimisation: the UPSERT enforces the cooldown itself, after a restart too.
    """

    def __init__(
        self,
        seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self._seconds = seconds
        self._clock = clock
        self._max_keys = max_keys
        self._last: dict[tuple[int, int], float] = {}

    def cooling(self, guild_id: int, user_id: int) -> bool:
        last = self._last.get((guild_id, user_id))
        return last is not None and self._clock() - last < self._seconds

    def mark(self, guild_id: int, user_id: int) -> None:
        now = self._clock()
        if len(self._last) >= self._max_keys:
            self._last = {k: t for k, t in self._last.items() if now - t < self._seconds}
        self._last[(guild_id, user_id)] = now


def level_up_text(mention: str, level: int) -> str:
    return f"🎉 {mention} reached level {level}!"


def rank_text(mention: str, standing: Standing | None) -> str:
    if standing is None:
        return f"{mention} has no XP yet."
    p = progress(standing.xp)
    return (
        f"{mention}: level {p.level} · {p.xp} XP ({p.into_level}/{p.needed} to the next level) "
        f"· rank #{standing.rank}"
    )


class Leveling(commands.Cog):
    def __init__(self, services: BotServices, xp: XpStore) -> None:
        self.services = services
        self.xp = xp
        self.cooldowns = Cooldowns(COOLDOWN_SECONDS)

    @commands.Cog.listener()
    async def on_clean_message(self, message: discord.Message) -> None:
        guild = message.guild
        if guild is None or message.author.bot:
            return
        if self.cooldowns.cooling(guild.id, message.author.id):
            return
        read = await self.services.settings_for(guild.id)
        if read is None or not read.settings.leveling.enabled:
            return
        try:
            award = await self.xp.award(guild.id, message.author.id, XP_PER_MESSAGE)
        except DB_ERRORS as exc:
            log.warning("guild %s: XP not awarded, PostgreSQL unreachable: %r", guild.id, exc)
            return
        self.cooldowns.mark(guild.id, message.author.id)
        if award is None or not award.levelled_up:
            return
        log.info("guild %s: member %s reached level %s", guild.id, message.author.id, award.level)
        target: Any = message.channel
        announce_id = read.settings.leveling.announce_channel_id
        if announce_id is not None:
            target = guild.get_channel(int(announce_id)) or message.channel
        await target.send(
            level_up_text(message.author.mention, award.level),
            allowed_mentions=discord.AllowedMentions(users=[message.author]),
        )

    @commands.command(name="rank")
    async def rank(self, ctx: commands.Context[Any], member: discord.Member | None = None) -> None:
        if ctx.guild is None:
            return
        who = member or ctx.author
        standing = await self.xp.standing(ctx.guild.id, who.id)
        await ctx.reply(
            rank_text(who.mention, standing),
            mention_author=False,
            allowed_mentions=discord.AllowedMentions.none(),
        )


async def setup(bot: commands.Bot) -> None:
    services = guildkit_bot(bot).services
    await bot.add_cog(Leveling(services, services.xp))
