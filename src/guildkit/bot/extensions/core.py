"""Built-in commands: ping, settings, help."""

from __future__ import annotations

import math
from typing import Any

from discord.ext import commands

from guildkit.bot.extensions._base import guildkit_bot
from guildkit.bot.services import BotServices
from guildkit.settings.model import BUILTIN_COMMANDS, GuildSettings
from guildkit.settings.reader import SettingsRead, Tier

TIER_NAMES = {
    Tier.L1: "the in-process cache (L1)",
    Tier.L2: "Redis (L2)",
    Tier.DB: "PostgreSQL",
    Tier.STALE: "the last copy held (PostgreSQL unreachable, may be outdated)",
}

BUILTIN_HELP = {
    "help": "this list",
    "ping": "check the bot is alive",
    "settings": "show this server's prefix and settings version",
    "rank": "your level and XP (or a member's)",
}


def settings_summary(read: SettingsRead) -> str:
    return (
        f"Prefix `{read.settings.prefix}` · settings version {read.version} · "
        f"read from {TIER_NAMES[read.tier]}"
    )


def help_text(settings: GuildSettings) -> str:
    prefix = settings.prefix
    lines = ["**Commands**"]
    for name in BUILTIN_COMMANDS:
        if name not in settings.disabled_commands:
            lines.append(f"`{prefix}{name}` — {BUILTIN_HELP[name]}")
    if settings.custom_commands:
        names = ", ".join(f"`{prefix}{c.name}`" for c in settings.custom_commands)
        lines.append(f"**Custom commands**: {names}")
    return "\n".join(lines)[:2000]


def pong_text(latency_seconds: float) -> str:
    if math.isfinite(latency_seconds):
        return f"pong 🏓 ({latency_seconds * 1000:.0f} ms)"
    return "pong 🏓"


class Core(commands.Cog):
    def __init__(self, services: BotServices) -> None:
        self.services = services

    @commands.command(name="ping")
    async def ping(self, ctx: commands.Context[Any]) -> None:
        await ctx.reply(pong_text(ctx.bot.latency), mention_author=False)

    @commands.command(name="settings")
    async def settings(self, ctx: commands.Context[Any]) -> None:
        if ctx.guild is None:
            return
        read = await self.services.settings_for(ctx.guild.id)
        if read is not None:
            await ctx.reply(settings_summary(read), mention_author=False)

    @commands.command(name="help")
    async def help(self, ctx: commands.Context[Any]) -> None:
        if ctx.guild is None:
            return
        read = await self.services.settings_for(ctx.guild.id)
        if read is not None:
            await ctx.reply(help_text(read.settings), mention_author=False)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Core(guildkit_bot(bot).services))
