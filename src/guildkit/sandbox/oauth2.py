"""OAuth2 authorization-code flow with PKCE, as the dashboard's login uses it."""

from __future__ import annotations

import base64
import html
import secrets
import time
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from guildkit.sandbox import errors, payloads
from guildkit.sandbox.appkeys import STATE, TOKENS
from guildkit.sandbox.rest.common import json_response, principal
from guildkit.sandbox.tokens import (
    CODE_LIFETIME_SECONDS,
    TOKEN_LIFETIME_SECONDS,
    Grant,
    pkce_matches,
)

routes = web.RouteTableDef()
SUPPORTED_SCOPES = frozenset({"identify", "guilds", "email", "guilds.members.read", "bot"})


def _with_query(url: str, **params: str) -> str:
    separator = "&" if urlsplit(url).query else "?"
    return f"{url}{separator}{urlencode(params)}"


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    return json_response({"error": error, "error_description": description}, status=status)


def _bad_request_page(message: str) -> web.Response:
    return web.Response(status=400, text=f"sandbox OAuth2: {message}", content_type="text/plain")


@routes.get("/oauth2/authorize")
async def authorize(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    q = request.query
    if q.get("client_id") != state.client_id:
        return _bad_request_page("unknown client_id")
    redirect_uri = q.get("redirect_uri", "")
    if urlsplit(redirect_uri).scheme not in ("http", "https"):
        return _bad_request_page("redirect_uri must be an http(s) URL")
    if q.get("response_type") != "code":
        return _bad_request_page("response_type must be code")
    scope = " ".join(q.get("scope", "").replace("+", " ").split())
    if not scope or not set(scope.split()) <= SUPPORTED_SCOPES:
        return _bad_request_page(f"unsupported scope {scope!r}")
    method = q.get("code_challenge_method")
    challenge = q.get("code_challenge")
    if challenge is not None and method not in (None, "S256", "plain"):
        return _bad_request_page("code_challenge_method must be S256")
    extra = {"state": q["state"]} if "state" in q else {}
    if q.get("sandbox_deny"):
        raise web.HTTPFound(_with_query(redirect_uri, error="access_denied", **extra))
    chosen = q.get("sandbox_user")
    if chosen is None:
        return _login_page(request)
    if not chosen.isdigit() or int(chosen) not in state.users or state.users[int(chosen)].bot:
        return _bad_request_page(f"unknown sandbox user {chosen}")
    grant = Grant(
        user_id=int(chosen),
        client_id=state.client_id,
        redirect_uri=redirect_uri,
        scope=scope,
        code_challenge=challenge,
        code_challenge_method=method if challenge is not None else None,
        expires_at=time.monotonic() + CODE_LIFETIME_SECONDS,
    )
    code = request.app[TOKENS].issue_code(grant)
    raise web.HTTPFound(_with_query(redirect_uri, code=code, **extra))


def _login_page(request: web.Request) -> web.Response:
    """Stands in for Discord's consent screen: pick which sandbox user to log in as."""
    state = request.app[STATE]
    buttons = []
    for u in state.users.values():
        if u.bot or u.id == state.app_owner.id:
            continue
        url = _with_query(str(request.rel_url), sandbox_user=str(u.id))
        label = html.escape(u.global_name or u.username)
        buttons.append(f'<li><a class="login" href="{html.escape(url)}">Log in as {label}</a></li>')
    deny = html.escape(_with_query(str(request.rel_url), sandbox_deny="1"))
    body = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Sandbox Discord login</title>"
        "</head><body><h1>Sandbox Discord</h1>"
        "<p>An application wants to access your account. Choose a sandbox user:</p>"
        f"<ul>{''.join(buttons) or '<li>No users yet: POST /_sandbox/users.</li>'}</ul>"
        f'<p><a class="deny" href="{deny}">Cancel</a></p></body></html>'
    )
    return web.Response(text=body, content_type="text/html")


def _client_credentials(request: web.Request, form: dict[str, str]) -> tuple[str, str]:
    header = request.headers.get("Authorization", "")
    if header.startswith("Basic "):
        try:
            decoded = base64.b64decode(header[6:]).decode()
        except (ValueError, UnicodeDecodeError):
            return "", ""
        client_id, _, secret = decoded.partition(":")
        return client_id, secret
    return form.get("client_id", ""), form.get("client_secret", "")


@routes.post("/oauth2/token")
async def token(request: web.Request) -> web.Response:
    state = request.app[STATE]
    tokens = request.app[TOKENS]
    form = {k: str(v) for k, v in (await request.post()).items()}
    client_id, secret = _client_credentials(request, form)
    if client_id != state.client_id or not secrets.compare_digest(secret, state.client_secret):
        return _oauth_error(401, "invalid_client", "Unknown client or wrong client secret")
    grant_type = form.get("grant_type")
    if grant_type == "refresh_token":
        previous = tokens.refresh.pop(form.get("refresh_token", ""), None)
        if previous is None:
            return _oauth_error(400, "invalid_grant", "Invalid refresh token")
        user_id, scope = previous.user_id, previous.scope
    elif grant_type == "authorization_code":
        grant = tokens.take_code(form.get("code", ""))
        if grant is None:
            return _oauth_error(400, "invalid_grant", 'Invalid "code" in request.')
        if form.get("redirect_uri") != grant.redirect_uri:
            return _oauth_error(400, "invalid_grant", 'Invalid "redirect_uri" in request.')
        if grant.code_challenge is not None:
            verifier = form.get("code_verifier", "")
            if not verifier or not _pkce_ok(verifier, grant):
                return _oauth_error(400, "invalid_grant", "Invalid code_verifier")
        user_id, scope = grant.user_id, grant.scope
    else:
        return _oauth_error(400, "unsupported_grant_type", f"Unsupported grant_type {grant_type!r}")
    access, refresh, _ = tokens.issue_tokens(user_id, scope)
    return json_response(
        {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME_SECONDS,
            "refresh_token": refresh,
            "scope": scope,
        }
    )


def _pkce_ok(verifier: str, grant: Grant) -> bool:
    assert grant.code_challenge is not None
    return pkce_matches(verifier, grant.code_challenge, grant.code_challenge_method)


@routes.post("/oauth2/token/revoke")
async def revoke(request: web.Request) -> web.Response:
    form = await request.post()
    request.app[TOKENS].revoke(str(form.get("token", "")))
    return json_response({})


@routes.get("/oauth2/@me")
async def current_authorization(request: web.Request) -> web.Response:
    who = principal(request)
    if who.is_bot:
        raise errors.unauthorized()
    state = request.app[STATE]
    return json_response(
        {
            "application": {"id": state.client_id, "name": state.bot_user.username, "icon": None},
            "scopes": sorted(who.scopes),
            "user": payloads.user(state.user(who.user_id)),
        }
    )
