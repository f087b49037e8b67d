"""Who is asking, and may they touch this guild: the session, CSRF and guild authorization."""

from __future__ import annotations

import hmac

from fastapi import Request

from guildkit.dashboard.context import Dashboard
from guildkit.dashboard.discord_api import UserGuild
from guildkit.dashboard.permissions import can_manage
from guildkit.dashboard.sessions import Session, looked_up_session, session_for
from guildkit.settings.types import parse_guild_id

CSRF_HEADER = "X-CSRF-Token"
CSRF_FORM_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class NotLoggedIn(Exception):
    """No valid session: missing, forged, expired, or Discord revoked its token."""


class Forbidden(Exception):
    """Logged in, but not allowed (no rights on the guild, or a missing/wrong CSRF token)."""


class GuildNotFound(Exception):
    """Not a guild id, or not a guild among the user's."""


def dashboard_of(request: Request) -> Dashboard:
    dashboard: Dashboard = request.app.state.dashboard
    return dashboard


async def optional_session(request: Request) -> Session | None:
    """The request's session (one PostgreSQL lookup per request at most), or None.

    Raises StorageUnavailable (a 503) when a cookie is presented but PostgreSQL cannot be asked.
    """
    return await session_for(request.scope, dashboard_of(request).sessions)


def known_session(request: Request) -> Session | None:
    """The session if this request has already looked it up; never queries (for rendering)."""
    return looked_up_session(request.scope)


async def require_session(request: Request) -> Session:
    session = await optional_session(request)
    if session is None:
        raise NotLoggedIn("log in with Discord first")
    return session


def check_csrf(session: Session, presented: str | None) -> None:
    if not presented or not hmac.compare_digest(presented.encode(), session.csrf_token.encode()):
        raise Forbidden("missing or wrong CSRF token (X-CSRF-Token from GET /api/session)")


async def require_csrf_header(request: Request) -> Session:
    """For unsafe API methods: a session first (401), then its CSRF token in the header (403)."""
    session = await require_session(request)
    check_csrf(session, request.headers.get(CSRF_HEADER))
    return session


async def authorize_guild(
    request: Request, session: Session, raw_guild_id: str, *, for_write: bool
) -> tuple[int, UserGuild]:
    """The guild id and the user's view of it, if the user may manage it.

    Writes accept a guild list only a few seconds old, so lost rights take effect at once.
    """
    try:
        guild_id = parse_guild_id(raw_guild_id)
    except ValueError:
        raise GuildNotFound(f"{raw_guild_id!r} is not a Discord server id") from None
    dashboard = dashboard_of(request)
    max_age = dashboard.options.write_permission_max_age_seconds if for_write else None
    guilds = await dashboard.discord.user_guilds(session.access_token, max_age=max_age)
    for guild in guilds:
        if guild.id == str(guild_id):
            if not can_manage(guild):
                raise Forbidden(
                    "you need to own this server or hold Administrator or Manage Server there"
                )
            return guild_id, guild
    raise GuildNotFound("no such server among yours")
