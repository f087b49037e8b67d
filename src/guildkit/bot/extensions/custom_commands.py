"""Custom commands: `{prefix}{name}` replies with the response the guild configured."""

from __future__ import annotations

import discord
from discord.ext import commands

from guildkit.bot.extensions._base import guildkit_bot
from guildkit.bot.services import BotServices
from guildkit.settings.model import BUILTIN_COMMANDS, CustomCommand, GuildSettings


def match_custom_command(content: str, settings: GuildSettings) -> CustomCommand | None:
    if not content.startswith(settings.prefix):
        return None
    words = content[len(settings.prefix) :].split(maxsplit=1)
    if not words or words[0] in BUILTIN_COMMANDS:
        return None
    return next((c for c in settings.custom_commands if c.name == words[0]), None)


class CustomCommands(commands.Cog):
    def __init__(self, services: BotServices) -> None:
        self.services = services

    @commands.Cog.listener()
    async def on_clean_message(self, message: discord.Message) -> None:
        if message.guild is None:
            return
        read = await self.services.settings_for(message.guild.id)
        if read is None:
            return
        command = match_custom_command(message.content, read.settings)
        if command is not None:
            await message.channel.send(command.response)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(CustomCommands(guildkit_bot(bot).services))
