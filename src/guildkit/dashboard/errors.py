"""Failures to HTTP in one place: JSON under /api, an HTML page (or login redirect) elsewhere."""

from __future__ import annotations

import contextlib
import logging
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse

from guildkit.dashboard.access import (
    Forbidden,
    GuildNotFound,
    NotLoggedIn,
    dashboard_of,
    known_session,
    optional_session,
)
from guildkit.dashboard.api import UnsupportedMediaType, etag
from guildkit.dashboard.auth import clear_session
from guildkit.dashboard.discord_api import DiscordAuthError, DiscordError
from guildkit.dashboard.rendering import render
from guildkit.dashboard.storage import StorageUnavailable
from guildkit.settings.errors import SettingsValidationError, VersionConflict, VersionNotFound

log = logging.getLogger(__name__)


def wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


async def _reply(
    request: Request, status: int, detail: Any, headers: dict[str, str] | None = None
) -> Response:
    if wants_json(request):
        return JSONResponse({"detail": detail}, status_code=status, headers=headers)
    # The page shows who is logged in: look the session up if the route had not yet (a 422
    # from request validation, say); with PostgreSQL unreachable the page shows nobody.
    with contextlib.suppress(StorageUnavailable):
        await optional_session(request)
    message = detail if isinstance(detail, str) else "; ".join(str(d.get("msg")) for d in detail)
    return render(
        request,
        "error.html",
        {"status": status, "message": message},
        status_code=status,
        headers=headers,
    )


async def _not_logged_in(request: Request, exc: Exception) -> Response:
    if wants_json(request) or request.method != "GET":
        response = await _reply(request, 401, str(exc) or "log in with Discord first")
    else:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        response = RedirectResponse(f"/auth/login?next={quote(target)}", status_code=303)
    if isinstance(exc, DiscordAuthError):
        # Discord no longer accepts the session's token: end the session here too.
        session = known_session(request)
        if session is not None:
            with contextlib.suppress(StorageUnavailable):
                await dashboard_of(request).sessions.end(session)
        clear_session(request, response)
    return response


async def _forbidden(request: Request, exc: Exception) -> Response:
    return await _reply(request, 403, str(exc))


async def _not_found(request: Request, exc: Exception) -> Response:
    return await _reply(request, 404, str(exc))


async def _invalid(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SettingsValidationError)
    detail = [{**e, "loc": ["body", *e["loc"]]} for e in exc.errors]
    return await _reply(request, 422, detail)


async def _request_invalid(request: Request, exc: Exception) -> Response:
    """FastAPI's own 422, in DESIGN §7's shape: `loc`, `msg`, `type`, without echoing the input.

    The default handler echoes the offending input, and a NaN there (`{"version": NaN}` is
    accepted by Python's JSON parser) made its JSON encoding fail: a 500.
    """
    assert isinstance(exc, RequestValidationError)
    detail = [
        {
            "loc": [str(p) if not isinstance(p, int) else p for p in e["loc"]],
            "msg": str(e["msg"]),
            "type": str(e["type"]),
        }
        for e in exc.errors()
    ]
    return await _reply(request, 422, detail)


async def _version_not_found(request: Request, exc: Exception) -> Response:
    return await _reply(
        request, 422, [{"loc": ["body", "version"], "msg": str(exc), "type": "version_not_found"}]
    )


async def _conflict(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, VersionConflict)
    if wants_json(request):
        return JSONResponse(
            {
                "detail": str(exc),
                "expected_version": exc.expected,
                "current_version": exc.current,
            },
            status_code=412,
            headers={"ETag": etag(exc.current)},
        )
    return await _reply(request, 412, str(exc))


async def _unsupported(request: Request, exc: Exception) -> Response:
    return await _reply(request, 415, str(exc))


async def _storage(request: Request, exc: Exception) -> Response:
    log.warning(
        "PostgreSQL unavailable for %s %s: %r", request.method, request.url.path, exc.__cause__
    )
    return await _reply(request, 503, str(exc), headers={"Retry-After": "5"})


async def _discord(request: Request, exc: Exception) -> Response:
    log.warning("Discord call failed for %s %s: %s", request.method, request.url.path, exc)
    request.app.state.dashboard.metrics.discord_errors.labels(type(exc).__name__).inc()
    return await _reply(request, 502, f"Discord did not answer as expected: {exc}")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(NotLoggedIn, _not_logged_in)
    app.add_exception_handler(DiscordAuthError, _not_logged_in)
    app.add_exception_handler(Forbidden, _forbidden)
    app.add_exception_handler(GuildNotFound, _not_found)
    app.add_exception_handler(SettingsValidationError, _invalid)
    app.add_exception_handler(RequestValidationError, _request_invalid)
    app.add_exception_handler(VersionNotFound, _version_not_found)
    app.add_exception_handler(VersionConflict, _conflict)
    app.add_exception_handler(UnsupportedMediaType, _unsupported)
    app.add_exception_handler(StorageUnavailable, _storage)
    app.add_exception_handler(DiscordError, _discord)
