"""The JSON API of DESIGN §7."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from guildkit.dashboard.access import (
    authorize_guild,
    dashboard_of,
    require_csrf_header,
    require_session,
)
from guildkit.dashboard.permissions import manageable
from guildkit.dashboard.responses import GUILD_READ, GUILD_WRITE, SESSION
from guildkit.dashboard.service import MAX_VERSION, SyncStatus, history_json
from guildkit.dashboard.sessions import Session
from guildkit.settings.errors import SettingsValidationError
from guildkit.settings.types import VersionedSettings

router = APIRouter(prefix="/api", tags=["api"])

MERGE_PATCH_TYPES = frozenset({"application/json", "application/merge-patch+json"})
_ETAG = re.compile(r'^"(\d{1,10})"$')


class UnsupportedMediaType(Exception):
    pass


class GuildOut(BaseModel):
    id: str
    name: str
    icon: str | None
    bot_present: bool


class SettingsDocument(BaseModel):
    guild_id: str
    version: int
    settings: dict[str, Any]
    updated_at: str | None
    updated_by: str | None


class HistoryOut(BaseModel):
    version: int
    change_seq: int
    actor: str
    at: str
    diff: list[dict[str, Any]]


class ProcessOut(BaseModel):
    instance_id: str
    shard_ids: list[int]
    applied_change_seq: int
    heartbeat_at: str


class SyncOut(BaseModel):
    guild_id: str
    version: int
    change_seq: int
    live: bool
    processes: list[ProcessOut]


class RevertIn(BaseModel):
    version: int = Field(
        ge=0, le=MAX_VERSION, description="the version whose content becomes the new version"
    )


def etag(version: int) -> str:
    return f'"{version}"'


def parse_if_match(value: str | None) -> int | None:
    """The version an If-Match names; None when absent or `*`. Weak or malformed tags match
    nothing (RFC 9110 uses strong comparison for If-Match), hence version -1."""
    if value is None or value.strip() == "*":
        return None
    match = _ETAG.match(value.strip())
    return int(match.group(1)) if match else -1


def document_response(current: VersionedSettings, status_code: int = 200) -> JSONResponse:
    return JSONResponse(
        current.to_document(),
        status_code=status_code,
        headers={"ETag": etag(current.version), "Cache-Control": "no-store"},
    )


@router.get(
    "/guilds",
    response_model=list[GuildOut],
    summary="Servers the user may manage",
    responses={**SESSION, 502: GUILD_READ[502]},
)
async def list_guilds(request: Request) -> list[GuildOut]:
    session = await require_session(request)
    dashboard = dashboard_of(request)
    guilds = manageable(await dashboard.discord.user_guilds(session.access_token))
    bot_guilds = await dashboard.discord.bot_guild_ids()
    return [
        GuildOut(id=g.id, name=g.name, icon=g.icon, bot_present=g.id in bot_guilds) for g in guilds
    ]


@router.get(
    "/guilds/{guild_id}/settings",
    response_model=SettingsDocument,
    summary="A server's settings (ETag: the version)",
    responses={**GUILD_READ, 304: {"description": "If-None-Match names the current version"}},
)
async def get_settings(request: Request, guild_id: str) -> Response:
    session = await require_session(request)
    gid, _ = await authorize_guild(request, session, guild_id, for_write=False)
    current = await dashboard_of(request).service.get(gid)
    if request.headers.get("if-none-match", "").strip() == etag(current.version):
        return Response(status_code=304, headers={"ETag": etag(current.version)})
    return document_response(current)


@router.patch(
    "/guilds/{guild_id}/settings",
    response_model=SettingsDocument,
    summary="Change settings with a JSON Merge Patch (RFC 7396)",
    responses={
        **GUILD_WRITE,
        415: {"description": "body is not application/json or application/merge-patch+json"},
        422: {"description": "field-level validation errors; nothing was written"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                media: {"schema": {"type": "object"}, "example": {"prefix": "?"}}
                for media in sorted(MERGE_PATCH_TYPES)
            },
        }
    },
)
async def patch_settings(request: Request, guild_id: str) -> Response:
    session = await require_csrf_header(request)
    gid, _ = await authorize_guild(request, session, guild_id, for_write=True)
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in MERGE_PATCH_TYPES:
        raise UnsupportedMediaType(
            "send the patch as application/merge-patch+json or application/json"
        )
    patch = _json_object(await request.body())
    expected = parse_if_match(request.headers.get("if-match"))
    service = dashboard_of(request).service
    result = await service.patch(gid, patch, actor=session.actor, expected_version=expected)
    return document_response(result.current)


@router.get(
    "/guilds/{guild_id}/settings/history",
    response_model=list[HistoryOut],
    summary="Settings versions, newest first, with their diffs",
    responses=GUILD_READ,
)
async def get_history(
    request: Request,
    guild_id: str,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before_version: Annotated[int | None, Query(ge=1, le=MAX_VERSION)] = None,
) -> list[dict[str, Any]]:
    session = await require_session(request)
    gid, _ = await authorize_guild(request, session, guild_id, for_write=False)
    entries = await dashboard_of(request).service.history(
        gid, limit=limit, before_version=before_version
    )
    return [history_json(e) for e in entries]


@router.post(
    "/guilds/{guild_id}/settings/revert",
    response_model=SettingsDocument,
    summary="Write a new version with an earlier version's content",
    responses={**GUILD_WRITE, 400: {"description": "the body is not JSON"}},
)
async def revert_settings(
    request: Request,
    guild_id: str,
    # A dependency, so 401/403 are decided before the body is validated (422).
    session: Annotated[Session, Depends(require_csrf_header)],
    body: Annotated[RevertIn, Body()],
) -> Response:
    gid, _ = await authorize_guild(request, session, guild_id, for_write=True)
    expected = parse_if_match(request.headers.get("if-match"))
    result = await dashboard_of(request).service.revert(
        gid, body.version, actor=session.actor, expected_version=expected
    )
    return document_response(result.current)


@router.get(
    "/guilds/{guild_id}/sync",
    response_model=SyncOut,
    summary="Whether every live bot process has applied the latest change",
    responses=GUILD_READ,
)
async def get_sync(request: Request, guild_id: str) -> dict[str, Any]:
    session = await require_session(request)
    gid, _ = await authorize_guild(request, session, guild_id, for_write=False)
    status: SyncStatus = await dashboard_of(request).service.sync(gid)
    return status.to_json()


# A settings patch is at most four levels deep (custom_commands → [i] → {name, response});
# far deeper input is an attack on the recursive code downstream (merge, diff, validation).
MAX_PATCH_DEPTH = 32


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise SettingsValidationError(
            [{"loc": [], "msg": "the body is not valid JSON", "type": "json_invalid"}]
        ) from None
    except RecursionError:
        # json.loads recurses per nesting level: a few thousand brackets exhaust the stack.
        value = None
        too_deep = True
    else:
        too_deep = _depth_exceeds(value, MAX_PATCH_DEPTH)
    if too_deep:
        raise SettingsValidationError(
            [
                {
                    "loc": [],
                    "msg": f"the patch is nested more than {MAX_PATCH_DEPTH} levels deep",
                    "type": "too_deep",
                }
            ]
        )
    if not isinstance(value, dict):
        raise SettingsValidationError(
            [{"loc": [], "msg": "the patch must be a JSON object", "type": "object_type"}]
        )
    return value


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether containers nest deeper than `limit`, found without recursion."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False
