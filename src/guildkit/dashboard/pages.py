"""The HTML pages: plain forms that work without JavaScript, enhanced by htmx when it is there."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from guildkit.dashboard.access import (
    CSRF_FORM_FIELD,
    GuildNotFound,
    authorize_guild,
    check_csrf,
    dashboard_of,
    optional_session,
    require_session,
)
from guildkit.dashboard.discord_api import (
    Channel,
    DiscordError,
    DiscordNotFound,
    DiscordUnavailable,
    Role,
    UserGuild,
)
from guildkit.dashboard.forms import BUILTINS, SECTIONS, error_map, overlaps
from guildkit.dashboard.permissions import BOT_INVITE_PERMISSIONS, manageable
from guildkit.dashboard.rendering import is_htmx, render
from guildkit.dashboard.service import history_json
from guildkit.dashboard.sessions import Session
from guildkit.dashboard.storage import StorageUnavailable
from guildkit.settings.errors import SettingsValidationError, VersionConflict, VersionNotFound
from guildkit.settings.merge_patch import apply_merge_patch
from guildkit.settings.types import VersionedSettings

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
MAX_SYNC_POLLS = 40


@router.get("/static/htmx.min.js")
async def htmx_script(request: Request) -> Response:
    path = dashboard_of(request).options.htmx_path
    if path is None or not path.is_file():
        # The pages work without it; a 404 here only means no progressive enhancement.
        return Response(
            "// htmx is not installed (make install)", status_code=404, media_type="text/javascript"
        )
    return FileResponse(
        path, media_type="text/javascript", headers={"Cache-Control": "public, max-age=3600"}
    )


@router.get("/", response_class=HTMLResponse)
async def index(request: Request) -> Response:
    session = await optional_session(request)
    if session is None:
        return render(request, "index.html", {"guilds": None})
    dashboard = dashboard_of(request)
    guilds = manageable(await dashboard.discord.user_guilds(session.access_token))
    notice = None
    try:
        bot_guilds: frozenset[str] | None = await dashboard.discord.bot_guild_ids()
    except DiscordError as exc:
        bot_guilds, notice = None, f"Could not ask Discord where the bot is ({exc})."
    rows = [
        {
            "guild": g,
            "bot_present": bot_guilds is None or g.id in bot_guilds,
            "invite": dashboard.discord.invite_url(g.id, permissions=BOT_INVITE_PERMISSIONS),
        }
        for g in guilds
    ]
    return render(request, "index.html", {"guilds": rows, "notice": notice})


@router.get("/guilds/{guild_id}/history", response_class=HTMLResponse)
async def history_page(
    request: Request, guild_id: str, before_version: int | None = None
) -> Response:
    session = await require_session(request)
    gid, guild = await authorize_guild(request, session, guild_id, for_write=False)
    return await _history(request, session, gid, guild, before_version=before_version)


@router.post("/guilds/{guild_id}/history/revert", response_class=HTMLResponse)
async def history_revert(request: Request, guild_id: str) -> Response:
    session = await require_session(request)
    form = await request.form()
    check_csrf(session, _field(form, CSRF_FORM_FIELD))
    gid, guild = await authorize_guild(request, session, guild_id, for_write=True)
    service = dashboard_of(request).service
    try:
        version = int(_field(form, "version"))
        expected = int(_field(form, "expected_version"))
    except ValueError:
        return await _history(
            request, session, gid, guild, problem="Choose a version to revert to.", status=422
        )
    try:
        result = await service.revert(gid, version, actor=session.actor, expected_version=expected)
    except VersionConflict as exc:
        message = (
            f"Someone saved version {exc.current} while you were looking at version "
            f"{exc.expected}. Nothing was reverted; review the list and try again."
        )
        return await _history(request, session, gid, guild, problem=message, status=412)
    except (SettingsValidationError, VersionNotFound) as exc:
        return await _history(
            request, session, gid, guild, problem=f"Cannot revert: {exc}", status=422
        )
    except (StorageUnavailable, DiscordError) as exc:
        return await _history(request, session, gid, guild, problem=str(exc), status=503)
    saved = {
        "version": result.current.version,
        "change_seq": result.current.change_seq,
        "reverted_to": version,
        "changed": result.changed,
    }
    return await _history(request, session, gid, guild, saved=saved)


@router.get("/guilds/{guild_id}/sync-status", response_class=HTMLResponse)
async def sync_status(request: Request, guild_id: str, seq: int = 0, poll: int = 0) -> Response:
    session = await require_session(request)
    gid, _ = await authorize_guild(request, session, guild_id, for_write=False)
    status = await dashboard_of(request).service.sync(gid)
    target = max(seq, 0)
    applied = sum(1 for p in status.processes if p.applied_change_seq >= target)
    context = {
        "guild_id": str(gid),
        "seq": target,
        "applied": applied,
        "total": len(status.processes),
        "poll": poll + 1,
        "keep_polling": (applied < len(status.processes) or not status.processes)
        and poll < MAX_SYNC_POLLS,
    }
    return render(request, "_sync.html", context)


@router.get("/guilds/{guild_id}", response_class=HTMLResponse)
async def general_page(request: Request, guild_id: str) -> Response:
    return await section_page(request, guild_id, "general")


@router.post("/guilds/{guild_id}", response_class=HTMLResponse)
async def general_save(request: Request, guild_id: str) -> Response:
    return await section_save(request, guild_id, "general")


@router.get("/guilds/{guild_id}/{section}", response_class=HTMLResponse)
async def section_page(request: Request, guild_id: str, section: str) -> Response:
    if section not in SECTIONS:
        raise GuildNotFound(f"no settings page called {section!r}")
    session = await require_session(request)
    gid, guild = await authorize_guild(request, session, guild_id, for_write=False)
    current = await dashboard_of(request).service.get(gid)
    return await _section(request, session, guild, section, current, current.settings.to_json())


@router.post("/guilds/{guild_id}/{section}", response_class=HTMLResponse)
async def section_save(request: Request, guild_id: str, section: str) -> Response:
    if section not in SECTIONS:
        raise GuildNotFound(f"no settings page called {section!r}")
    session = await require_session(request)
    form = await request.form()
    check_csrf(session, _field(form, CSRF_FORM_FIELD))
    gid, guild = await authorize_guild(request, session, guild_id, for_write=True)
    service = dashboard_of(request).service
    patch = SECTIONS[section].to_patch(form)
    try:
        expected: int | None = int(_field(form, "version"))
    except ValueError:
        expected = None
    merged = False
    try:
        try:
            result = await service.patch(gid, patch, actor=session.actor, expected_version=expected)
        except VersionConflict as conflict:
            # Someone saved other settings meanwhile: if none of this form's fields changed,
            # applying it over their version loses nothing, so do not bother the admin.
            changes = await service.changes_since(gid, conflict.expected)
            if overlaps(patch, changes):
                raise
            result = await service.patch(
                gid, patch, actor=session.actor, expected_version=conflict.current
            )
            merged = True
    except (SettingsValidationError, VersionConflict, StorageUnavailable, DiscordError) as exc:
        return await _rejected(request, session, guild, section, patch, exc)
    saved = {
        "version": result.current.version,
        "change_seq": result.current.change_seq,
        "changed": result.changed,
        "merged": merged,
    }
    return await _section(
        request,
        session,
        guild,
        section,
        result.current,
        result.current.settings.to_json(),
        saved=saved,
    )


async def _rejected(
    request: Request,
    session: Session,
    guild: UserGuild,
    section: str,
    patch: dict[str, Any],
    exc: Exception,
) -> Response:
    """Show the form again with the admin's input kept, and say why it was not saved."""
    service = dashboard_of(request).service
    context: dict[str, Any] = {}
    try:
        current = await service.get(int(guild.id))
    except StorageUnavailable:
        current = VersionedSettings.defaults(int(guild.id))
    values = apply_merge_patch(current.settings.to_json(), patch)
    if isinstance(exc, SettingsValidationError):
        status, context["errors"] = 422, error_map(exc.errors)
    elif isinstance(exc, VersionConflict):
        status = 412
        context["conflict"] = {
            "expected": exc.expected,
            "current": current.version,
            "updated_by": current.updated_by,
            "updated_at": current.updated_at,
            "changes": await service.changes_since(int(guild.id), exc.expected),
        }
    elif isinstance(exc, StorageUnavailable):
        status, context["problem"] = 503, str(exc)
    else:
        status, context["problem"] = (
            502,
            f"Discord did not answer, so the channels and roles could not be checked: {exc}",
        )
    return await _section(
        request, session, guild, section, current, values, status=status, **context
    )


async def _section(
    request: Request,
    session: Session,
    guild: UserGuild,
    section: str,
    current: VersionedSettings,
    values: dict[str, Any],
    *,
    status: int = 200,
    **extra: Any,
) -> Response:
    dashboard = dashboard_of(request)
    channels, roles, lookup_problem = await _guild_objects(request, guild.id)
    errors: dict[str, list[str]] = extra.pop("errors", {})
    context = {
        "guild": guild,
        "section": section,
        "sections": SECTIONS,
        "current": current,
        "values": values,
        "errors": errors,
        "channels": channels,
        "names": _names(channels, roles),
        "text_channels": [c for c in channels if c.is_text],
        "roles": roles,
        "assignable_roles": [r for r in roles if not r.managed and r.id != guild.id],
        "builtins": BUILTINS,
        "lookup_problem": lookup_problem,
        "invite": dashboard.discord.invite_url(guild.id, permissions=BOT_INVITE_PERMISSIONS),
        "csrf_token": session.csrf_token,
        "saved": None,
        "conflict": None,
        "problem": None,
        **extra,
    }
    if is_htmx(request):
        # htmx swaps only 2xx responses; the fragment itself says what went wrong.
        return render(request, "_form.html", context)
    return render(request, "section.html", context, status_code=status)


async def _guild_objects(
    request: Request, guild_id: str
) -> tuple[list[Channel], list[Role], str | None]:
    discord = dashboard_of(request).discord
    try:
        return await discord.guild_channels(guild_id), await discord.guild_roles(guild_id), None
    except DiscordNotFound:
        return [], [], "The bot is not in this server yet, so channels and roles cannot be listed."
    except DiscordUnavailable as exc:
        return [], [], f"Discord did not answer, so channels and roles cannot be listed ({exc})."


async def _history(
    request: Request,
    session: Session,
    gid: int,
    guild: UserGuild,
    *,
    before_version: int | None = None,
    problem: str | None = None,
    saved: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    service = dashboard_of(request).service
    current = await service.get(gid)
    entries = await service.history(gid, limit=25, before_version=before_version)
    channels, roles, _ = await _guild_objects(request, guild.id)
    context = {
        "names": _names(channels, roles),
        "guild": guild,
        "section": "history",
        "sections": SECTIONS,
        "current": current,
        "entries": [history_json(e) for e in entries],
        "older": entries[-1].version if entries and entries[-1].version > 1 else None,
        "csrf_token": session.csrf_token,
        "problem": problem,
        "saved": saved,
    }
    return render(request, "history.html", context, status_code=status)


def _names(channels: list[Channel], roles: list[Role]) -> dict[str, str]:
    return {c.id: f"#{c.name}" for c in channels} | {r.id: f"@{r.name}" for r in roles}


def _field(form: Any, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""
