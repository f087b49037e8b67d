"""Discord permission bits and the guild-level permission computation."""

from __future__ import annotations

from enum import IntFlag


class Permission(IntFlag):
    CREATE_INSTANT_INVITE = 1 << 0
    KICK_MEMBERS = 1 << 1
    BAN_MEMBERS = 1 << 2
    ADMINISTRATOR = 1 << 3
    MANAGE_CHANNELS = 1 << 4
    MANAGE_GUILD = 1 << 5
    ADD_REACTIONS = 1 << 6
    VIEW_AUDIT_LOG = 1 << 7
    VIEW_CHANNEL = 1 << 10
    SEND_MESSAGES = 1 << 11
    MANAGE_MESSAGES = 1 << 13
    EMBED_LINKS = 1 << 14
    ATTACH_FILES = 1 << 15
    READ_MESSAGE_HISTORY = 1 << 16
    MENTION_EVERYONE = 1 << 17
    CHANGE_NICKNAME = 1 << 26
    MANAGE_ROLES = 1 << 28
    MODERATE_MEMBERS = 1 << 40


ALL_PERMISSIONS = (1 << 51) - 1

# Roughly what Discord gives @everyone in a new server.
EVERYONE_DEFAULT = int(
    Permission.CREATE_INSTANT_INVITE
    | Permission.ADD_REACTIONS
    | Permission.VIEW_CHANNEL
    | Permission.SEND_MESSAGES
    | Permission.EMBED_LINKS
    | Permission.ATTACH_FILES
    | Permission.READ_MESSAGE_HISTORY
    | Permission.MENTION_EVERYONE
    | Permission.CHANGE_NICKNAME
)

# What guildkit's invite link asks for; tests lower it to provoke 50013 Missing Permissions.
BOT_DEFAULT = int(
    Permission.VIEW_CHANNEL
    | Permission.SEND_MESSAGES
    | Permission.EMBED_LINKS
    | Permission.READ_MESSAGE_HISTORY
    | Permission.MANAGE_MESSAGES
    | Permission.MANAGE_ROLES
    | Permission.KICK_MEMBERS
    | Permission.MODERATE_MEMBERS
)


def resolve(role_permissions: list[int], *, is_owner: bool) -> int:
    """Guild-level permissions (channel overwrites are not modelled by the sandbox)."""
    if is_owner:
        return ALL_PERMISSIONS
    combined = 0
    for value in role_permissions:
        combined |= value
    if combined & Permission.ADMINISTRATOR:
        return ALL_PERMISSIONS
    return combined


def has(permissions: int, needed: Permission) -> bool:
    return permissions & needed == needed
