"""The sandbox's in-memory objects, kept close to Discord's own resources."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ChannelType:
    GUILD_TEXT = 0
    DM = 1
    GUILD_VOICE = 2
    GUILD_CATEGORY = 4


@dataclass
class User:
    id: int
    username: str
    global_name: str | None = None
    bot: bool = False


@dataclass
class Role:
    id: int
    guild_id: int
    name: str
    permissions: int
    position: int
    color: int = 0
    hoist: bool = False
    mentionable: bool = False
    bot_id: int | None = None

    @property
    def managed(self) -> bool:
        return self.bot_id is not None


@dataclass
class Channel:
    id: int
    type: int
    name: str | None
    guild_id: int | None
    position: int = 0
    topic: str | None = None
    parent_id: int | None = None
    recipient_ids: list[int] = field(default_factory=list)
    last_message_id: int | None = None


@dataclass
class Member:
    user_id: int
    guild_id: int
    role_ids: list[int] = field(default_factory=list)
    nick: str | None = None
    joined_at: dt.datetime = field(default_factory=utcnow)


@dataclass
class Guild:
    id: int
    name: str
    owner_id: int
    channels: dict[int, Channel] = field(default_factory=dict)
    roles: dict[int, Role] = field(default_factory=dict)
    members: dict[int, Member] = field(default_factory=dict)
    system_channel_id: int | None = None

    @property
    def everyone_role(self) -> Role:
        # Discord gives @everyone the guild's own id.
        return self.roles[self.id]


@dataclass
class Message:
    id: int
    channel_id: int
    guild_id: int | None
    author_id: int
    content: str
    timestamp: dt.datetime = field(default_factory=utcnow)
    embeds: list[dict[str, object]] = field(default_factory=list)
    mention_ids: list[int] = field(default_factory=list)
    reference_id: int | None = None
    deleted: bool = False
    deleted_by: int | None = None


@dataclass
class Action:
    """Something a client did through the REST API, kept so tests can assert on it."""

    seq: int
    kind: str
    actor_id: int
    guild_id: int | None
    channel_id: int | None = None
    message_id: int | None = None
    user_id: int | None = None
    role_id: int | None = None
    content: str | None = None
    reason: str | None = None
    at: dt.datetime = field(default_factory=utcnow)
