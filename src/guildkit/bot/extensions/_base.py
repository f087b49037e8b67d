"""What every extension's `setup` needs: the guildkit bot, not just any discord.py bot."""

from __future__ import annotations

from discord.ext import commands

from guildkit.bot.client import GuildkitBot


def guildkit_bot(bot: commands.Bot) -> GuildkitBot:
    if not isinstance(bot, GuildkitBot):
        raise TypeError("guildkit extensions need the GuildkitBot built by guildkit.bot.app")
    return bot
