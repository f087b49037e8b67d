"""The sandbox chat page: talk to the bot as a demo user in a browser (`GET /chat`).

Plain HTML and JavaScript, no build step. The page long-polls `/chat/api/state`, which returns
as soon as anything in the sandbox changes (state.version moves), so the bot's replies, joins
and moderation deletions show up live. Messages are posted through the control API.
"""

from __future__ import annotations

import datetime as dt
from importlib.resources import files
from typing import Any

from aiohttp import web

from guildkit.sandbox.appkeys import STATE
from guildkit.sandbox.model import Action, ChannelType, Guild, Message
from guildkit.sandbox.rest.common import json_response
from guildkit.sandbox.state import SandboxState

routes = web.RouteTableDef()

MAX_WAIT_SECONDS = 25.0
MESSAGES_SHOWN = 200
EVENTS_SHOWN = 50


def _page() -> str:
    return files("guildkit.sandbox").joinpath("static/chat.html").read_text(encoding="utf-8")


def _name(state: SandboxState, user_id: int) -> str:
    user = state.users.get(user_id)
    if user is None:
        return str(user_id)
    return user.global_name or user.username


def _guild(state: SandboxState, guild: Guild) -> dict[str, Any]:
    channels = sorted(
        (c for c in guild.channels.values() if c.type == ChannelType.GUILD_TEXT),
        key=lambda c: (c.position, c.id),
    )
    members = [
        {
            "id": str(m.user_id),
            "name": _name(state, m.user_id),
            "bot": state.users[m.user_id].bot if m.user_id in state.users else False,
            "owner": m.user_id == guild.owner_id,
            "joined_at": m.joined_at.isoformat(),
        }
        for m in sorted(guild.members.values(), key=lambda m: m.joined_at)
    ]
    return {
        "id": str(guild.id),
        "name": guild.name,
        "channels": [{"id": str(c.id), "name": c.name} for c in channels],
        "members": members,
    }


def _message(state: SandboxState, msg: Message) -> dict[str, Any]:
    return {
        "id": str(msg.id),
        "author_id": str(msg.author_id),
        "author": _name(state, msg.author_id),
        "bot": msg.author_id == state.bot_user.id,
        "content": msg.content,
        "embeds": msg.embeds,
        "at": msg.timestamp.isoformat(),
        "deleted": msg.deleted,
        "deleted_by": _name(state, msg.deleted_by) if msg.deleted_by is not None else None,
    }


def _event(state: SandboxState, action: Action) -> dict[str, Any]:
    return {
        "seq": action.seq,
        "kind": action.kind,
        "actor": _name(state, action.actor_id),
        "user": _name(state, action.user_id) if action.user_id is not None else None,
        "content": action.content,
        "reason": action.reason,
        "at": action.at.isoformat(),
    }


def snapshot(state: SandboxState, guild_id: int | None, channel_id: int | None) -> dict[str, Any]:
    guilds = sorted(state.guilds.values(), key=lambda g: g.id)
    guild = state.guilds.get(guild_id) if guild_id is not None else None
    if guild is None and guilds:
        guild = guilds[0]
    messages: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    if guild is not None:
        channel = guild.channels.get(channel_id) if channel_id is not None else None
        if channel is None:
            channel = next(
                (c for c in guild.channels.values() if c.type == ChannelType.GUILD_TEXT), None
            )
        if channel is not None:
            channel_id = channel.id
            found = state.channel_messages(channel.id, include_deleted=True)
            messages = [_message(state, m) for m in found[-MESSAGES_SHOWN:]]
        chosen = [a for a in state.actions if a.guild_id == guild.id and a.kind != "message_sent"]
        events = [_event(state, a) for a in chosen[-EVENTS_SHOWN:]]
    return {
        "version": state.version,
        "bot_user_id": str(state.bot_user.id),
        "guilds": [_guild(state, g) for g in guilds],
        "guild_id": str(guild.id) if guild is not None else None,
        "channel_id": str(channel_id) if channel_id is not None and guild is not None else None,
        "messages": messages,
        "events": events,
        "now": dt.datetime.now(dt.UTC).isoformat(),
    }


def _int(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name, "")
    return int(raw) if raw.isdigit() else None


@routes.get("/chat")
async def chat_page(_: web.Request) -> web.Response:
    return web.Response(text=_page(), content_type="text/html", charset="utf-8")


@routes.get("/chat/api/state")
async def chat_state(request: web.Request) -> web.Response:
    state = request.app[STATE]
    since = _int(request, "since")
    if since is not None:
        wait = min(float(request.query.get("wait", MAX_WAIT_SECONDS)), MAX_WAIT_SECONDS)
        await state.wait_for_change(since, wait)
    return json_response(snapshot(state, _int(request, "guild_id"), _int(request, "channel_id")))


@routes.post("/chat/api/join")
async def chat_join(request: web.Request) -> web.Response:
    """A new user joins the guild (GUILD_MEMBER_ADD), to watch welcome messages and auto roles."""
    body = await request.json()
    state = request.app[STATE]
    guild = state.guild(int(body["guild_id"]))
    number = len(state.users) + 1
    user = state.create_user(f"newcomer-{number}", global_name=f"Newcomer {number}")
    state.add_member(guild.id, user.id)
    return json_response({"user_id": str(user.id), "name": _name(state, user.id)})
