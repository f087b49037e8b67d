"""The control API under /_sandbox/: set the scene, act as users, read back what the bot did."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from guildkit.sandbox import errors, payloads, views
from guildkit.sandbox.appkeys import HUB, STATE, TOKENS
from guildkit.sandbox.demo import seed_demo
from guildkit.sandbox.model import ChannelType
from guildkit.sandbox.permissions import BOT_DEFAULT
from guildkit.sandbox.rest.common import json_response, no_content, snowflake

routes = web.RouteTableDef()
PREFIX = "/_sandbox"
MAX_WAIT_SECONDS = 30.0


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    body = await request.json()
    if not isinstance(body, dict):
        raise errors.invalid_form_body("expected a JSON object")
    return body


def _id(body: dict[str, Any], key: str) -> int:
    value = body.get(key)
    if value is None or not str(value).isdigit():
        raise errors.invalid_form_body(f"{key} must be a snowflake")
    return int(value)


def _ids(body: dict[str, Any], key: str) -> list[int]:
    values = body.get(key) or []
    if not isinstance(values, list) or not all(str(v).isdigit() for v in values):
        raise errors.invalid_form_body(f"{key} must be a list of snowflakes")
    return [int(v) for v in values]


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("1", "true", "yes")


@routes.post(f"{PREFIX}/reset")
async def reset(request: web.Request) -> web.Response:
    request.app[HUB].reset()
    request.app[TOKENS].reset()
    request.app[STATE].reset()
    return no_content()


@routes.get(f"{PREFIX}/info")
async def info(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return json_response(
        {
            "bot_user": payloads.user(state.bot_user),
            "client_id": state.client_id,
            "version": state.version,
        }
    )


@routes.post(f"{PREFIX}/seed-demo")
async def demo(request: web.Request) -> web.Response:
    return json_response(seed_demo(request.app[STATE]).as_json())


@routes.post(f"{PREFIX}/users")
async def create_user(request: web.Request) -> web.Response:
    body = await _body(request)
    username = str(body.get("username") or "")
    if not username:
        raise errors.invalid_form_body("username is required")
    u = request.app[STATE].create_user(username, global_name=body.get("global_name"))
    return json_response(payloads.user(u))


@routes.post(f"{PREFIX}/guilds")
async def create_guild(request: web.Request) -> web.Response:
    body = await _body(request)
    state = request.app[STATE]
    g = state.create_guild(
        str(body.get("name") or "Sandbox Guild"),
        _id(body, "owner_id"),
        with_bot=bool(body.get("with_bot", True)),
        bot_permissions=int(body.get("bot_permissions", BOT_DEFAULT)),
    )
    return json_response(state.guild_create_json(g, with_members=True))


@routes.get(f"{PREFIX}/guilds/{{guild_id}}")
async def get_guild(request: web.Request) -> web.Response:
    state = request.app[STATE]
    g = state.guild(snowflake(request, "guild_id"))
    return json_response(
        state.guild_create_json(g, with_members=True) | {"bot_present": state.bot_in(g.id)}
    )


@routes.put(f"{PREFIX}/guilds/{{guild_id}}/bot")
async def add_bot(request: web.Request) -> web.Response:
    body = await _body(request)
    request.app[STATE].add_bot(
        snowflake(request, "guild_id"), int(body.get("permissions", BOT_DEFAULT))
    )
    return no_content()


@routes.delete(f"{PREFIX}/guilds/{{guild_id}}/bot")
async def remove_bot(request: web.Request) -> web.Response:
    request.app[STATE].remove_bot(snowflake(request, "guild_id"))
    return no_content()


@routes.put(f"{PREFIX}/guilds/{{guild_id}}/bot/permissions")
async def set_bot_permissions(request: web.Request) -> web.Response:
    body = await _body(request)
    request.app[STATE].set_bot_permissions(snowflake(request, "guild_id"), int(body["permissions"]))
    return no_content()


@routes.post(f"{PREFIX}/guilds/{{guild_id}}/channels")
async def create_channel(request: web.Request) -> web.Response:
    body = await _body(request)
    state = request.app[STATE]
    c = state.create_channel(
        snowflake(request, "guild_id"),
        str(body.get("name") or "channel"),
        type=int(body.get("type", ChannelType.GUILD_TEXT)),
        topic=body.get("topic"),
    )
    return json_response(payloads.channel(c, state.user))


@routes.post(f"{PREFIX}/guilds/{{guild_id}}/roles")
async def create_role(request: web.Request) -> web.Response:
    body = await _body(request)
    position = body.get("position")
    r = request.app[STATE].create_role(
        snowflake(request, "guild_id"),
        str(body.get("name") or "new role"),
        permissions=int(body.get("permissions", 0)),
        position=None if position is None else int(position),
        color=int(body.get("color", 0)),
    )
    return json_response(payloads.role(r))


@routes.patch(f"{PREFIX}/guilds/{{guild_id}}/roles/{{role_id}}")
async def edit_role(request: web.Request) -> web.Response:
    body = await _body(request)
    request.app[STATE].set_role_permissions(
        snowflake(request, "guild_id"), snowflake(request, "role_id"), int(body["permissions"])
    )
    return no_content()


@routes.post(f"{PREFIX}/guilds/{{guild_id}}/members")
async def add_member(request: web.Request) -> web.Response:
    body = await _body(request)
    state = request.app[STATE]
    m = state.add_member(
        snowflake(request, "guild_id"), _id(body, "user_id"), _ids(body, "role_ids")
    )
    return json_response(state.member_json(m))


@routes.get(f"{PREFIX}/guilds/{{guild_id}}/members/{{user_id}}")
async def get_member(request: web.Request) -> web.Response:
    state = request.app[STATE]
    m = state.member(snowflake(request, "guild_id"), snowflake(request, "user_id"))
    return json_response(state.member_json(m))


@routes.delete(f"{PREFIX}/guilds/{{guild_id}}/members/{{user_id}}")
async def remove_member(request: web.Request) -> web.Response:
    request.app[STATE].remove_member(snowflake(request, "guild_id"), snowflake(request, "user_id"))
    return no_content()


async def _member_role(request: web.Request, *, add: bool) -> web.Response:
    request.app[STATE].change_member_role(
        snowflake(request, "guild_id"),
        snowflake(request, "user_id"),
        snowflake(request, "role_id"),
        add=add,
    )
    return no_content()


@routes.put(f"{PREFIX}/guilds/{{guild_id}}/members/{{user_id}}/roles/{{role_id}}")
async def give_role(request: web.Request) -> web.Response:
    return await _member_role(request, add=True)


@routes.delete(f"{PREFIX}/guilds/{{guild_id}}/members/{{user_id}}/roles/{{role_id}}")
async def take_role(request: web.Request) -> web.Response:
    return await _member_role(request, add=False)


@routes.get(f"{PREFIX}/guilds/{{guild_id}}/actions")
async def guild_actions(request: web.Request) -> web.Response:
    state = request.app[STATE]
    guild_id = snowflake(request, "guild_id")
    state.guild(guild_id)
    since = int(request.query.get("since", "0"))
    found = [a for a in state.actions if a.guild_id == guild_id and a.seq > since]
    return json_response([views.action(a) for a in found])


@routes.get(f"{PREFIX}/actions")
async def all_actions(request: web.Request) -> web.Response:
    since = int(request.query.get("since", "0"))
    return json_response([views.action(a) for a in request.app[STATE].actions if a.seq > since])


@routes.post(f"{PREFIX}/channels/{{channel_id}}/messages")
async def post_message(request: web.Request) -> web.Response:
    body = await _body(request)
    state = request.app[STATE]
    content = str(body.get("content") or "")
    if not content:
        raise errors.empty_message()
    msg = state.post_message(snowflake(request, "channel_id"), _id(body, "author_id"), content)
    return json_response(views.message(msg))


@routes.get(f"{PREFIX}/channels/{{channel_id}}/messages")
async def channel_messages(request: web.Request) -> web.Response:
    state = request.app[STATE]
    found = state.channel_messages(snowflake(request, "channel_id"), include_deleted=True)
    author = request.query.get("author_id")
    if author is not None:
        found = [m for m in found if str(m.author_id) == author]
    if _flag(request, "exclude_deleted"):
        found = [m for m in found if not m.deleted]
    return json_response([views.message(m) for m in found])


@routes.post(f"{PREFIX}/oauth2/tokens")
async def issue_token(request: web.Request) -> web.Response:
    """A bearer token without the browser dance, for API tests of the dashboard."""
    body = await _body(request)
    state = request.app[STATE]
    user_id = _id(body, "user_id")
    state.user(user_id)
    scope = str(body.get("scope") or "identify guilds")
    access, refresh, _ = request.app[TOKENS].issue_tokens(user_id, scope)
    return json_response({"access_token": access, "refresh_token": refresh, "scope": scope})


@routes.post(f"{PREFIX}/gateway/cut")
async def cut_gateway(request: web.Request) -> web.Response:
    body = await _body(request)
    cut = request.app[HUB].cut(
        refuse_seconds=float(body.get("refuse_seconds", 0)),
        invalidate_sessions=bool(body.get("invalidate_sessions", False)),
    )
    return json_response({"connections_cut": cut})


@routes.post(f"{PREFIX}/gateway/restore")
async def restore_gateway(request: web.Request) -> web.Response:
    request.app[HUB].restore()
    return no_content()


@routes.get(f"{PREFIX}/gateway/sessions")
async def gateway_sessions(request: web.Request) -> web.Response:
    return json_response(request.app[HUB].describe())


@routes.put(f"{PREFIX}/intents")
async def set_allowed_intents(request: web.Request) -> web.Response:
    """Which intents the application may use (Discord's portal switches privileged ones on)."""
    body = await _body(request)
    request.app[STATE].allowed_intents = int(body["allowed"])
    return no_content()


@routes.get(f"{PREFIX}/wait")
async def wait(request: web.Request) -> web.Response:
    """Long-poll: answers once anything changed after `since` (a version), or after `timeout`."""
    since = int(request.query.get("since", "0"))
    timeout = min(float(request.query.get("timeout", "5")), MAX_WAIT_SECONDS)
    version = await request.app[STATE].wait_for_change(since, timeout)
    return json_response({"version": version})
