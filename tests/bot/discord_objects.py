"""discord.py objects built from real gateway payloads, over a fake HTTP client that records."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any, cast

import discord
from discord.state import ConnectionState

GUILD_ID = 1000
GENERAL = 1010
MOD_LOG = 1011
EXEMPT_ROLE = 1020
MEMBER_ID = 1030
_ids = itertools.count(5000)


def _role(role_id: int, name: str) -> dict[str, Any]:
    return {
        "id": str(role_id),
        "name": name,
        "permissions": "0",
        "position": 0,
        "color": 0,
        "hoist": False,
        "managed": False,
        "mentionable": False,
        "flags": 0,
    }


def _channel(channel_id: int, name: str) -> dict[str, Any]:
    return {
        "id": str(channel_id),
        "type": 0,
        "name": name,
        "position": 0,
        "guild_id": str(GUILD_ID),
        "permission_overwrites": [],
    }


class RecordingHttp:
    """The few HTTPClient calls the extensions make, recorded instead of sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, str]] = []
        self.deleted: list[int] = []
        self.forbid_delete = False

    async def delete_message(self, channel_id: int, message_id: int, **_: Any) -> None:
        if self.forbid_delete:
            raise discord.Forbidden(
                cast(Any, _Response(403)), {"code": 50013, "message": "Missing Permissions"}
            )
        self.deleted.append(int(message_id))

    async def send_message(self, channel_id: int, *, params: Any) -> dict[str, Any]:
        content = params.payload.get("content") if params.payload else None
        self.sent.append((int(channel_id), content or ""))
        return message_payload(content or "", channel_id=int(channel_id), author_id=1)


class _Response:
    def __init__(self, status: int) -> None:
        self.status = status
        self.reason = "Forbidden"


def make_state(http: RecordingHttp) -> ConnectionState[Any]:
    intents = discord.Intents.none()
    intents.guilds = intents.members = intents.guild_messages = intents.message_content = True
    state: ConnectionState[Any] = ConnectionState(
        dispatch=lambda *args, **kwargs: None,
        handlers={},
        hooks={},
        http=cast(Any, http),
        intents=intents,
    )
    state.loop = asyncio.get_running_loop()
    return state


def make_guild(state: ConnectionState[Any]) -> discord.Guild:
    data = {
        "id": str(GUILD_ID),
        "name": "Test Guild",
        "owner_id": "1",
        "roles": [_role(GUILD_ID, "@everyone"), _role(EXEMPT_ROLE, "Trusted")],
        "channels": [_channel(GENERAL, "general"), _channel(MOD_LOG, "mod-log")],
        "member_count": 3,
        "members": [],
        "features": [],
        "emojis": [],
        "stickers": [],
    }
    guild = discord.Guild(data=cast(Any, data), state=state)
    state._add_guild(guild)
    return guild


def message_payload(
    content: str,
    *,
    channel_id: int = GENERAL,
    author_id: int = MEMBER_ID,
    roles: tuple[int, ...] = (),
    bot: bool = False,
) -> dict[str, Any]:
    return {
        "id": str(next(_ids)),
        "channel_id": str(channel_id),
        "guild_id": str(GUILD_ID),
        "author": {
            "id": str(author_id),
            "username": "someone",
            "discriminator": "0",
            "avatar": None,
            "global_name": None,
            "bot": bot,
        },
        "member": {
            "roles": [str(r) for r in roles],
            "joined_at": "2024-01-01T00:00:00+00:00",
            "deaf": False,
            "mute": False,
            "flags": 0,
        },
        "content": content,
        "timestamp": "2024-01-01T00:00:00+00:00",
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "pinned": False,
        "type": 0,
    }


def make_message(guild: discord.Guild, content: str, **kwargs: Any) -> discord.Message:
    channel = guild.get_channel(kwargs.pop("channel_id", GENERAL))
    assert isinstance(channel, discord.TextChannel)
    return discord.Message(
        state=guild._state, channel=channel, data=cast(Any, message_payload(content, **kwargs))
    )
