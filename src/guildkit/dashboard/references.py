"""Check that the channels and roles a settings document names exist in the guild (DESIGN §4)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from guildkit.dashboard.discord_api import DiscordClient, DiscordNotFound
from guildkit.settings.errors import SettingsValidationError
from guildkit.settings.model import GuildSettings

Loc = list[str | int]


def channel_refs(settings: GuildSettings) -> Iterator[tuple[Loc, str]]:
    if settings.welcome.channel_id:
        yield ["welcome", "channel_id"], settings.welcome.channel_id
    if settings.log_channel_id:
        yield ["log_channel_id"], settings.log_channel_id
    if settings.leveling.announce_channel_id:
        yield ["leveling", "announce_channel_id"], settings.leveling.announce_channel_id


def role_refs(settings: GuildSettings) -> Iterator[tuple[Loc, str, bool]]:
    """(loc, role id, whether the bot must be able to assign it)."""
    for i, role_id in enumerate(settings.auto_roles):
        yield ["auto_roles", i], role_id, True
    for i, role_id in enumerate(settings.moderation.exempt_role_ids):
        yield ["moderation", "exempt_role_ids", i], role_id, False


async def check_references(discord: DiscordClient, guild_id: int, settings: GuildSettings) -> None:
    """Raise SettingsValidationError (locs relative to the document) for any unknown id.

    DiscordUnavailable propagates: an unverifiable save is refused, not waved through.
    """
    channels = list(channel_refs(settings))
    roles = list(role_refs(settings))
    if not channels and not roles:
        return
    gid = str(guild_id)
    errors: list[dict[str, Any]] = []
    if channels:
        try:
            known = {c.id: c for c in await discord.guild_channels(gid)}
        except DiscordNotFound:
            known = {}
            errors.extend(_bot_missing(loc, "channel") for loc, _ in channels)
            channels = []
        for loc, channel_id in channels:
            channel = known.get(channel_id)
            if channel is None:
                errors.append(
                    {"loc": loc, "msg": "no such channel in this server", "type": "unknown_channel"}
                )
            elif not channel.is_text:
                errors.append(
                    {
                        "loc": loc,
                        "msg": f"#{channel.name} is not a text channel",
                        "type": "not_text_channel",
                    }
                )
    if roles:
        try:
            known_roles = {r.id: r for r in await discord.guild_roles(gid)}
        except DiscordNotFound:
            known_roles = {}
            errors.extend(_bot_missing(loc, "role") for loc, _, _ in roles)
            roles = []
        for loc, role_id, assignable in roles:
            role = known_roles.get(role_id)
            if role is None:
                errors.append(
                    {"loc": loc, "msg": "no such role in this server", "type": "unknown_role"}
                )
            elif assignable and (role.managed or role.id == gid):
                errors.append(
                    {
                        "loc": loc,
                        "msg": f"@{role.name} cannot be given to members by the bot",
                        "type": "role_not_assignable",
                    }
                )
    if errors:
        raise SettingsValidationError(errors)


def _bot_missing(loc: Loc, kind: str) -> dict[str, Any]:
    return {
        "loc": loc,
        "msg": f"the bot is not in this server, so this {kind} cannot be checked; invite it first",
        "type": "bot_not_in_guild",
    }
