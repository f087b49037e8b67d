"""/users, /gateway and /oauth2/applications: identity and discovery."""

from __future__ import annotations

from aiohttp import web

from guildkit.sandbox import errors, payloads
from guildkit.sandbox.appkeys import STATE
from guildkit.sandbox.gateway import gateway_url
from guildkit.sandbox.rest.common import json_response, principal, require_bot, snowflake

routes = web.RouteTableDef()


@routes.get("/gateway")
async def get_gateway(request: web.Request) -> web.Response:
    return json_response({"url": gateway_url(request)})


@routes.get("/gateway/bot")
async def get_gateway_bot(request: web.Request) -> web.Response:
    require_bot(request)
    limit = {"total": 1000, "remaining": 999, "reset_after": 86_400_000, "max_concurrency": 1}
    return json_response({"url": gateway_url(request), "shards": 1, "session_start_limit": limit})


@routes.get("/users/@me")
async def get_me(request: web.Request) -> web.Response:
    who = principal(request)
    state = request.app[STATE]
    if not who.is_bot and "identify" not in who.scopes:
        raise errors.unauthorized()
    data = payloads.user(state.user(who.user_id))
    data |= {"verified": True, "mfa_enabled": False, "locale": "en-US", "premium_type": 0}
    if who.is_bot or "email" in who.scopes:
        data["email"] = None
    return json_response(data)


@routes.get("/users/@me/guilds")
async def get_my_guilds(request: web.Request) -> web.Response:
    who = principal(request)
    state = request.app[STATE]
    if not who.is_bot and "guilds" not in who.scopes:
        raise errors.missing_access()
    guilds = sorted(state.guilds_of(who.user_id), key=lambda g: g.id)
    after = int(request.query.get("after", "0") or 0)
    before = int(request.query.get("before", "0") or 0)
    limit = min(int(request.query.get("limit", "200") or 200), 200)
    guilds = [g for g in guilds if g.id > after and (not before or g.id < before)][:limit]
    return json_response(
        [
            payloads.partial_guild(
                g,
                owner=g.owner_id == who.user_id,
                permissions=state.permissions_of(g.id, who.user_id),
            )
            for g in guilds
        ]
    )


@routes.get("/users/{user_id:\\d+}")
async def get_user(request: web.Request) -> web.Response:
    state = require_bot(request)
    return json_response(payloads.user(state.user(snowflake(request, "user_id"))))


@routes.post("/users/@me/channels")
async def open_dm(request: web.Request) -> web.Response:
    state = require_bot(request)
    body = await request.json()
    recipient = body.get("recipient_id") if isinstance(body, dict) else None
    if recipient is None or not str(recipient).isdigit():
        raise errors.invalid_form_body("recipient_id is required")
    channel = state.open_dm(state.bot_user.id, int(recipient))
    return json_response(payloads.channel(channel, state.user))


@routes.get("/oauth2/applications/@me")
async def get_application(request: web.Request) -> web.Response:
    state = require_bot(request)
    return json_response(payloads.application(state.bot_user.id, state.app_owner, state.bot_user))
