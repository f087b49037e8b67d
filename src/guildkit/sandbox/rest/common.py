"""What every REST handler shares: JSON responses, rate-limit headers, errors and auth."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from guildkit.sandbox import errors
from guildkit.sandbox.appkeys import STATE, TOKENS
from guildkit.sandbox.defaults import API_PREFIX
from guildkit.sandbox.errors import DiscordError
from guildkit.sandbox.state import SandboxState

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

RATE_LIMIT = 50


def json_response(data: Any, *, status: int = 200) -> web.Response:
    # discord.py only parses bodies whose Content-Type is exactly "application/json";
    # aiohttp's json_response would append "; charset=utf-8".
    return web.Response(
        body=json.dumps(data, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
    )


def no_content() -> web.Response:
    return web.Response(status=204)


def snowflake(request: web.Request, name: str) -> int:
    raw = request.match_info[name]
    if not raw.isdigit():
        raise errors.invalid_form_body(f"{name} is not a snowflake")
    return int(raw)


def audit_reason(request: web.Request) -> str | None:
    reason = request.headers.get("X-Audit-Log-Reason")
    return None if reason is None else unquote(reason)


@web.middleware
async def discord_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except DiscordError as exc:
        return json_response(exc.body(), status=exc.status)
    except web.HTTPNotFound:
        if request.path.startswith(API_PREFIX):
            return json_response(errors.not_found_route().body(), status=404)
        raise
    except web.HTTPMethodNotAllowed:
        if request.path.startswith(API_PREFIX):
            return json_response(errors.method_not_allowed().body(), status=405)
        raise


def _add_rate_limit_headers(request: web.Request, response: web.StreamResponse) -> None:
    # Never exhausted, so discord.py's limiter never waits, but always present so it
    # learns buckets the way it does against Discord.
    resource = request.match_info.route.resource
    template = resource.canonical if resource is not None else request.path
    bucket = hashlib.md5(f"{request.method} {template}".encode()).hexdigest()
    now = time.time()
    response.headers["X-RateLimit-Limit"] = str(RATE_LIMIT)
    response.headers["X-RateLimit-Remaining"] = str(RATE_LIMIT - 1)
    response.headers["X-RateLimit-Reset"] = f"{now + 1:.3f}"
    response.headers["X-RateLimit-Reset-After"] = "1.000"
    response.headers["X-RateLimit-Bucket"] = bucket


@web.middleware
async def rate_limit_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith(API_PREFIX):
        return await handler(request)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        _add_rate_limit_headers(request, exc)
        raise
    if not response.prepared:
        _add_rate_limit_headers(request, response)
    return response


@dataclass(frozen=True)
class Principal:
    user_id: int
    is_bot: bool
    scopes: frozenset[str] = frozenset()


def principal(request: web.Request) -> Principal:
    """Who is calling: `Bot <token>` must be the configured token; bearer tokens from OAuth2."""
    state = request.app[STATE]
    header = request.headers.get("Authorization", "")
    kind, _, credential = header.partition(" ")
    if kind == "Bot" and credential == state.bot_token:
        return Principal(user_id=state.bot_user.id, is_bot=True)
    if kind == "Bearer":
        token = request.app[TOKENS].lookup(credential)
        if token is not None:
            return Principal(user_id=token.user_id, is_bot=False, scopes=token.scopes)
    raise errors.unauthorized()


def require_bot(request: web.Request) -> SandboxState:
    if not principal(request).is_bot:
        raise errors.unauthorized()
    return request.app[STATE]


def bot_permissions(state: SandboxState, guild_id: int) -> int:
    """The bot's guild permissions; 403 Missing Access if the bot is not in the guild."""
    state.guild(guild_id)
    if not state.bot_in(guild_id):
        raise errors.missing_access()
    return state.permissions_of(guild_id, state.bot_user.id)
