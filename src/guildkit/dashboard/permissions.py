"""Who may manage a guild's settings: its owner, or a holder of Administrator or Manage Server."""

from __future__ import annotations

from typing import Final

from guildkit.dashboard.discord_api import UserGuild

ADMINISTRATOR: Final = 1 << 3
MANAGE_GUILD: Final = 1 << 5
MANAGING_PERMISSIONS: Final = ADMINISTRATOR | MANAGE_GUILD

# What the bot needs for DESIGN §8: view channels, send messages, manage messages (moderation),
# embed links, read message history, manage roles (auto roles).
BOT_INVITE_PERMISSIONS: Final = (
    (1 << 10) | (1 << 11) | (1 << 13) | (1 << 14) | (1 << 16) | (1 << 28)
)


def can_manage(guild: UserGuild) -> bool:
    return guild.owner or bool(guild.permissions & MANAGING_PERMISSIONS)


def manageable(guilds: list[UserGuild]) -> list[UserGuild]:
    return [g for g in guilds if can_manage(g)]
