"""Member join: the welcome message and the auto roles."""

from __future__ import annotations

import logging

import discord
from discord.ext import commands

from guildkit.bot.extensions._base import guildkit_bot
from guildkit.bot.rules.welcome_text import render_welcome
from guildkit.bot.services import BotServices
from guildkit.settings.model import GuildSettings

log = logging.getLogger(__name__)


def welcome_for(member: discord.Member, settings: GuildSettings) -> str:
    guild = member.guild
    return render_welcome(
        settings.welcome.message,
        user_mention=member.mention,
        server=guild.name,
        member_count=guild.member_count or len(guild.members),
    )


class Welcome(commands.Cog):
    def __init__(self, services: BotServices) -> None:
        self.services = services

    @commands.Cog.listener()
    async def on_member_join(self, member: discord.Member) -> None:
        read = await self.services.settings_for(member.guild.id)
        if read is None:
            return
        settings = read.settings
        # Separate steps: a refused role must not cost the member their welcome, or vice versa.
        if settings.welcome.enabled and settings.welcome.channel_id is not None:
            await self._welcome(member, settings)
        if settings.auto_roles:
            await self._give_roles(member, settings.auto_roles)

    async def _welcome(self, member: discord.Member, settings: GuildSettings) -> None:
        assert settings.welcome.channel_id is not None
        channel = member.guild.get_channel(int(settings.welcome.channel_id))
        if not isinstance(channel, discord.abc.Messageable):
            log.warning(
                "guild %s: welcome channel %s not found",
                member.guild.id,
                settings.welcome.channel_id,
            )
            return
        try:
            await channel.send(
                welcome_for(member, settings),
                allowed_mentions=discord.AllowedMentions(
                    everyone=False, roles=False, users=[member]
                ),
            )
        except discord.Forbidden as exc:
            log.warning(
                "guild %s: cannot post the welcome in channel %s: %s",
                member.guild.id,
                channel.id,
                exc.text or exc,
            )

    async def _give_roles(self, member: discord.Member, role_ids: tuple[str, ...]) -> None:
        roles = []
        for role_id in role_ids:
            role = member.guild.get_role(int(role_id))
            if role is None:
                log.warning("guild %s: auto role %s not found", member.guild.id, role_id)
            else:
                roles.append(role)
        if not roles:
            return
        try:
            await member.add_roles(*roles, reason="guildkit auto role")
        except discord.Forbidden as exc:
            log.warning(
                "guild %s: cannot give auto roles to %s: %s (Manage Roles, role order?)",
                member.guild.id,
                member.id,
                exc.text or exc,
            )
            return
        log.info(
            "guild %s: gave %s auto role(s) to member %s", member.guild.id, len(roles), member.id
        )


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Welcome(guildkit_bot(bot).services))
