"""Discord OAuth2 login (authorization code with state and PKCE S256), logout and /api/session."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse

from guildkit.dashboard.access import (
    CSRF_FORM_FIELD,
    CSRF_HEADER,
    check_csrf,
    dashboard_of,
    optional_session,
    require_session,
)
from guildkit.dashboard.discord_api import DiscordAuthError
from guildkit.dashboard.rendering import render
from guildkit.dashboard.responses import AUTH_PAGE, SESSION
from guildkit.dashboard.sessions import (
    LOGIN_COOKIE,
    LOGIN_MAX_AGE,
    SESSION_COOKIE,
    LoginAttempt,
    forget_session,
)

router = APIRouter()


def pkce_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def safe_next(value: str | None) -> str:
    """Only a local path: anything else would make the login an open redirect."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def callback_url(request: Request) -> str:
    public = dashboard_of(request).options.public_url
    if public:
        return public.rstrip("/") + "/auth/callback"
    return str(request.url_for("auth_callback"))


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=dashboard_of(request).options.cookie_secure,
    )


def clear_session(request: Request, response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="lax",
        secure=dashboard_of(request).options.cookie_secure,
    )


@router.get(
    "/auth/login",
    tags=["auth"],
    summary="Redirect to Discord to log in",
    status_code=302,
    response_class=RedirectResponse,
    responses={302: {"description": "to Discord's authorize page"}, 429: AUTH_PAGE[429]},
)
async def login(request: Request, next: str | None = None) -> RedirectResponse:
    dashboard = dashboard_of(request)
    attempt = LoginAttempt(
        state=secrets.token_urlsafe(24),
        code_verifier=secrets.token_urlsafe(64),
        next_path=safe_next(next),
    )
    url = dashboard.discord.authorize_url(
        state=attempt.state,
        code_challenge=pkce_challenge(attempt.code_verifier),
        redirect_uri=callback_url(request),
    )
    response = RedirectResponse(url, status_code=302)
    set_cookie(
        request, response, LOGIN_COOKIE, dashboard.sessions.encode_login(attempt), LOGIN_MAX_AGE
    )
    return response


@router.get(
    "/auth/callback",
    name="auth_callback",
    tags=["auth"],
    summary="Discord sends the user back here",
    status_code=303,
    response_class=RedirectResponse,
    responses={303: {"description": "logged in: on to the page that asked"}, **AUTH_PAGE},
)
async def callback(
    request: Request,
    code: str | None = None,
    state: str | None = None,
    error: str | None = None,
) -> Response:
    dashboard = dashboard_of(request)
    attempt = dashboard.sessions.decode_login(request.cookies.get(LOGIN_COOKIE))
    # As bytes: compare_digest refuses str with non-ASCII characters (a TypeError, a 500).
    if (
        attempt is None
        or not state
        or not hmac.compare_digest(state.encode(), attempt.state.encode())
    ):
        return _login_failed(request, "The login expired or did not start here. Please try again.")
    if error or not code:
        return _login_failed(request, "Discord did not authorize the login.")
    try:
        grant = await dashboard.discord.exchange_code(
            code=code, code_verifier=attempt.code_verifier, redirect_uri=callback_url(request)
        )
        user = await dashboard.discord.current_user(grant.access_token)
    except DiscordAuthError:
        return _login_failed(request, "Discord refused the login. Please try again.")
    # PostgreSQL unreachable: StorageUnavailable, the 503 page; the login can simply be retried.
    session, cookie = await dashboard.sessions.create(
        user_id=user.id,
        username=user.username,
        display_name=user.display_name,
        avatar=user.avatar,
        access_token=grant.access_token,
        token_expires_in=grant.expires_in,
    )
    response = RedirectResponse(attempt.next_path, status_code=303)
    # The cookie lives as long as the session it refers to (capped at the Discord token's life).
    lifetime = max(0, session.expires_at - int(time.time()))
    set_cookie(request, response, SESSION_COOKIE, cookie, lifetime)
    response.delete_cookie(LOGIN_COOKIE, path="/")
    return response


def _login_failed(request: Request, message: str) -> Response:
    response = render(request, "error.html", {"status": 400, "message": message}, status_code=400)
    response.delete_cookie(LOGIN_COOKIE, path="/")
    return response


@router.post(
    "/auth/logout",
    tags=["auth"],
    summary="End the session",
    status_code=204,
    response_class=Response,
    responses={
        303: {"description": "a form post: back to the start page"},
        403: {"description": "missing or wrong CSRF token"},
        413: {"description": "request body too large"},
        429: {"description": "too many requests; see Retry-After"},
    },
)
async def logout(request: Request) -> Response:
    session = await optional_session(request)
    is_form = request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    )
    if session is not None:
        presented = request.headers.get(CSRF_HEADER)
        if presented is None and is_form:
            presented = str((await request.form()).get(CSRF_FORM_FIELD) or "")
        check_csrf(session, presented)
        # Deleting the row ends the session in every dashboard process; if PostgreSQL cannot
        # be reached this is a 503 and the session stays valid (the user can try again).
        await dashboard_of(request).sessions.end(session)
        forget_session(request.scope)
        await dashboard_of(request).discord.revoke(session.access_token)
    response: Response = (
        RedirectResponse("/", status_code=303) if is_form else Response(status_code=204)
    )
    clear_session(request, response)
    return response


@router.get(
    "/api/session",
    tags=["auth"],
    summary="The logged-in user and the CSRF token",
    responses=SESSION,
)
async def api_session(request: Request) -> JSONResponse:
    session = await require_session(request)
    body: dict[str, Any] = session.to_public()
    return JSONResponse(body, headers={"Cache-Control": "no-store"})
