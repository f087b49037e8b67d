"""/channels/{id}: the channel and its messages (send, list, delete)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from guildkit.sandbox import errors, payloads
from guildkit.sandbox.model import Channel
from guildkit.sandbox.permissions import Permission, has
from guildkit.sandbox.rest.common import (
    bot_permissions,
    json_response,
    no_content,
    require_bot,
    snowflake,
)
from guildkit.sandbox.state import SandboxState

routes = web.RouteTableDef()
MAX_CONTENT = 2000


def _visible_channel(request: web.Request, needed: Permission) -> tuple[SandboxState, Channel]:
    """The channel if the bot can see it and holds `needed` there, else Discord's error."""
    state = require_bot(request)
    channel = state.channel(snowflake(request, "channel_id"))
    if channel.guild_id is None:
        if state.bot_user.id not in channel.recipient_ids:
            raise errors.missing_access()
        return state, channel
    granted = bot_permissions(state, channel.guild_id)
    if not has(granted, Permission.VIEW_CHANNEL):
        raise errors.missing_access()
    if not has(granted, needed):
        raise errors.missing_permissions()
    return state, channel


@routes.get("/channels/{channel_id}")
async def get_channel(request: web.Request) -> web.Response:
    state, channel = _visible_channel(request, Permission.VIEW_CHANNEL)
    return json_response(payloads.channel(channel, state.user))


@routes.get("/channels/{channel_id}/messages")
async def list_messages(request: web.Request) -> web.Response:
    state, channel = _visible_channel(request, Permission.READ_MESSAGE_HISTORY)
    limit = int(request.query.get("limit", "50") or 50)
    if not 1 <= limit <= 100:
        raise errors.invalid_form_body("limit must be between 1 and 100")
    before = int(request.query.get("before", "0") or 0)
    after = int(request.query.get("after", "0") or 0)
    found = state.channel_messages(channel.id)
    found = [m for m in found if (not before or m.id < before) and m.id > after]
    # Discord lists newest first, except when paging forwards with `after`.
    found.sort(key=lambda m: m.id, reverse=not after)
    return json_response([state.message_json(m, gateway=False) for m in found[:limit]])


@routes.get("/channels/{channel_id}/messages/{message_id}")
async def get_message(request: web.Request) -> web.Response:
    state, channel = _visible_channel(request, Permission.READ_MESSAGE_HISTORY)
    msg = state.message(channel.id, snowflake(request, "message_id"))
    return json_response(state.message_json(msg, gateway=False))


async def _message_body(request: web.Request) -> dict[str, Any]:
    if request.content_type.startswith("multipart/"):
        # discord.py sends multipart (payload_json plus files) when attaching files.
        form = await request.post()
        raw = form.get("payload_json")
        body = json.loads(raw) if isinstance(raw, str) else {}
    else:
        body = await request.json()
    if not isinstance(body, dict):
        raise errors.invalid_form_body("expected a JSON object")
    return body


@routes.post("/channels/{channel_id}/messages")
async def create_message(request: web.Request) -> web.Response:
    state, channel = _visible_channel(request, Permission.SEND_MESSAGES)
    body = await _message_body(request)
    content = str(body.get("content") or "")
    embeds = body.get("embeds") or []
    if not content and not embeds:
        raise errors.empty_message()
    if len(content) > MAX_CONTENT:
        raise errors.invalid_form_body("content: Must be 2000 or fewer in length.")
    reference = body.get("message_reference") or {}
    reference_id = reference.get("message_id") if isinstance(reference, dict) else None
    msg = state.post_message(
        channel.id,
        state.bot_user.id,
        content,
        embeds=list(embeds),
        reference_id=None if reference_id is None else int(reference_id),
        record=True,
    )
    return json_response(state.message_json(msg, gateway=False))


@routes.delete("/channels/{channel_id}/messages/{message_id}")
async def delete_message(request: web.Request) -> web.Response:
    state, channel = _visible_channel(request, Permission.VIEW_CHANNEL)
    msg = state.message(channel.id, snowflake(request, "message_id"))
    others = msg.author_id != state.bot_user.id and channel.guild_id is not None
    if others and channel.guild_id is not None:
        granted = state.permissions_of(channel.guild_id, state.bot_user.id)
        if not has(granted, Permission.MANAGE_MESSAGES):
            raise errors.missing_permissions()
    state.delete_message(channel.id, msg.id, actor_id=state.bot_user.id, record=True)
    return no_content()


@routes.post("/channels/{channel_id}/messages/bulk-delete")
async def bulk_delete(request: web.Request) -> web.Response:
    state, channel = _visible_channel(request, Permission.MANAGE_MESSAGES)
    body = await request.json()
    ids = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(ids, list) or not 2 <= len(ids) <= 100:
        raise errors.invalid_form_body("messages: must list 2 to 100 message ids")
    for raw in ids:
        state.delete_message(channel.id, int(raw), actor_id=state.bot_user.id, record=True)
    return no_content()


@routes.post("/channels/{channel_id}/typing")
async def trigger_typing(request: web.Request) -> web.Response:
    _visible_channel(request, Permission.SEND_MESSAGES)
    return no_content()
