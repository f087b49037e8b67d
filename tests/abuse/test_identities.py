"""Every route of the app, times every identity: only the right one gets through.

Routes are enumerated from `app.routes`, so a route added later is covered without touching this
file: any route with `{guild_id}` gets the guild matrix automatically, and any other route must
be listed in PUBLIC or SESSION_ONLY below, or `test_every_route_is_classified` fails.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from starlette.routing import Mount

from guildkit.dashboard.context import DashboardOptions
from guildkit.dashboard.sessions import LOGIN_COOKIE, SESSION_COOKIE, LoginAttempt, SessionStore
from guildkit.sandbox.client import SandboxClient
from guildkit.sandbox.runner import RunningSandbox
from tests.dashboard.conftest import (
    Built,
    Scene,
    authorize,
    build,
    client_for,
    dashboard_process,
    login,
    stored_session,
)
from tests.support.fixtures import PythonChildFactory

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Routes anyone may call; each must still never fail with a 5xx for any identity.
PUBLIC = frozenset(
    {
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/metrics"),
        ("GET", "/openapi.json"),
        ("GET", "/docs"),
        ("GET", "/docs/oauth2-redirect"),
        ("GET", "/redoc"),
        ("GET", "/static/htmx.min.js"),
        ("GET", "/"),
        ("GET", "/auth/login"),
        ("GET", "/auth/callback"),
        ("POST", "/auth/logout"),
    }
)
# Routes that need a session but no guild.
SESSION_ONLY = frozenset({("GET", "/api/session"), ("GET", "/api/guilds")})


@dataclass(frozen=True)
class Endpoint:
    method: str
    template: str

    @property
    def is_api(self) -> bool:
        return self.template.startswith("/api/")

    @property
    def unsafe(self) -> bool:
        return self.method in UNSAFE

    def path(self, guild_id: object) -> str:
        return self.template.replace("{guild_id}", str(guild_id)).replace("{section}", "welcome")


def endpoints(app: FastAPI) -> list[Endpoint]:
    # iter_route_contexts flattens included routers with their prefixes applied.
    found: list[Endpoint] = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, Mount):
            continue
        assert context.path, route
        for method in sorted(getattr(route, "methods", None) or ()):
            if method != "HEAD":
                found.append(Endpoint(method, context.path))
    return found


def guild_endpoints(app: FastAPI) -> list[Endpoint]:
    return [e for e in endpoints(app) if "{guild_id}" in e.template]


async def send(
    client: httpx.AsyncClient, endpoint: Endpoint, guild_id: object, csrf: str | None
) -> httpx.Response:
    """The request an honest client would send to this endpoint, with `csrf` where it goes."""
    path = endpoint.path(guild_id)
    if not endpoint.unsafe:
        return await client.request(endpoint.method, path)
    if endpoint.is_api:
        headers = {"Content-Type": "application/merge-patch+json"}
        if csrf is not None:
            headers["X-CSRF-Token"] = csrf
        body = {"version": 0} if endpoint.template.endswith("/revert") else {"prefix": "?"}
        return await client.request(endpoint.method, path, json=body, headers=headers)
    form = {"version": "0", "expected_version": "0", "prefix": "?", "welcome.message": "hi"}
    if csrf is not None:
        form["csrf_token"] = csrf
    return await client.request(endpoint.method, path, data=form)


def assert_not_logged_in(endpoint: Endpoint, response: httpx.Response, who: str) -> None:
    label = f"{who}: {endpoint.method} {endpoint.template}"
    if endpoint.is_api or endpoint.unsafe:
        assert response.status_code == 401, (label, response.status_code, response.text[:200])
    else:
        assert response.status_code == 303, (label, response.status_code)
        assert response.headers["location"].startswith("/auth/login?next="), label


@pytest.fixture
async def open_built(database_url: str, sandbox: RunningSandbox) -> object:
    # Rate limiting has its own tests; here it would only turn expected refusals into 429s.
    b = build(database_url, sandbox, options=DashboardOptions(write_burst=10_000))
    try:
        yield b
    finally:
        await b.close()


def test_every_route_is_classified(built: Built) -> None:
    unclassified = [
        e
        for e in endpoints(built.app)
        if "{guild_id}" not in e.template and (e.method, e.template) not in PUBLIC | SESSION_ONLY
    ]
    assert not unclassified, f"classify these routes in {__name__}: {unclassified}"
    assert len(guild_endpoints(built.app)) >= 10


async def test_guild_routes_refuse_every_wrong_identity(
    open_built: Built, scene: Scene, sb: SandboxClient, database_url: str, sandbox: RunningSandbox
) -> None:
    app = open_built.app
    guild = scene.guild
    routes = guild_endpoints(app)
    # No cookie, a forged one, one signed with another key (for a session that exists), an
    # expired one.
    other_key = SessionStore(open_built.engine, "some-other-secret-key-entirely-different")
    _, forged_cookie = await stored_session(other_key, scene.owner)
    _, expired_cookie = await stored_session(
        open_built.dashboard.sessions, scene.owner, token_expires_in=60, now=time.time() - 3600
    )
    cookies: dict[str, str | None] = {
        "no cookie": None,
        "garbage cookie": "eyJmb3JnZWQiOnRydWV9.AAAA.BBBB",
        "other key": forged_cookie,
        "expired": expired_cookie,
    }
    # A real admin's cookie, replayed after logging out on another dashboard process (another
    # app on the same database: nothing shared with this one but PostgreSQL).
    elsewhere = build(database_url, sandbox, options=DashboardOptions(write_burst=10_000))
    try:
        async with client_for(elsewhere.app) as admin:
            csrf = await login(admin, scene.admin)
            stolen = admin.cookies.get(SESSION_COOKIE)
            async with client_for(app) as here:
                here.cookies.set(SESSION_COOKIE, stolen or "", domain="dashboard.test")
                assert (await here.get("/api/session")).status_code == 200  # valid here too
            logout = await admin.post("/auth/logout", headers={"X-CSRF-Token": csrf})
            assert logout.status_code == 204
    finally:
        await elsewhere.close()
    cookies["replayed after logout elsewhere"] = stolen
    for who, cookie in cookies.items():
        async with client_for(app) as anon:
            if cookie is not None:
                anon.cookies.set(SESSION_COOKIE, cookie, domain="dashboard.test")
            for endpoint in routes:
                response = await send(anon, endpoint, guild, csrf or "x")
                assert_not_logged_in(endpoint, response, who)
            assert (await anon.get("/api/session")).status_code == 401, who
            assert (await anon.get("/api/guilds")).status_code == 401, who

    # Logged in, but without rights (403) or not in the guild at all (404), CSRF token or not.
    stranger = await sb.create_user("stranger")
    for who, user, status in (
        ("member without rights", scene.member, 403),
        ("admin of another guild", scene.outsider_admin, 404),
        ("in no guild at all", stranger.id, 404),
    ):
        async with client_for(app) as c:
            token = await login(c, user)
            for endpoint in routes:
                for presented in (token, None):
                    response = await send(c, endpoint, guild, presented)
                    expected = 403 if endpoint.unsafe and presented is None else status
                    assert response.status_code == expected, (who, endpoint, response.text[:200])
                    if not endpoint.is_api:
                        assert "text/html" in response.headers["content-type"]

    # The right person without, or with a wrong, CSRF token on every unsafe route.
    async with client_for(app) as c:
        token = await login(c, scene.admin)
        for endpoint in routes:
            if endpoint.unsafe:
                for presented in (None, token + "x", "", token.upper()):
                    response = await send(c, endpoint, guild, presented)
                    assert response.status_code == 403, (endpoint, presented, response.text)
        # A safe route ignores a CSRF token entirely; the header never unlocks anything.
        assert (await c.get(f"/api/guilds/{guild}/settings")).json()["version"] == 0

    # Nothing any of them sent was written.
    assert (await open_built.dashboard.store.get(guild)).version == 0


async def test_guild_routes_let_the_right_identities_through(
    open_built: Built, scene: Scene
) -> None:
    app = open_built.app
    for user in (scene.owner, scene.admin, scene.manager):
        async with client_for(app) as c:
            token = await login(c, user)
            for endpoint in guild_endpoints(app):
                if endpoint.template.endswith("/history/revert"):
                    current = (await c.get(f"/api/guilds/{scene.guild}/settings")).json()
                    response = await c.post(
                        endpoint.path(scene.guild),
                        data={
                            "version": "0",
                            "expected_version": str(current["version"]),
                            "csrf_token": token,
                        },
                    )
                else:
                    response = await send(c, endpoint, scene.guild, token)
                assert response.status_code in (200, 303), (
                    user,
                    endpoint,
                    response.status_code,
                    response.text[:300],
                )
    # Every write got through and landed, under the right actor.
    history = (await open_built.dashboard.store.history(scene.guild, limit=200))[::-1]
    assert history, "no write got through"
    assert [h.version for h in history] == list(range(1, len(history) + 1))


async def test_session_only_and_public_routes(open_built: Built, scene: Scene) -> None:
    app = open_built.app
    async with client_for(app) as anon:
        for method, path in sorted(PUBLIC):
            response = await anon.request(method, path)
            assert response.status_code < 500, (method, path)
        for method, path in sorted(SESSION_ONLY):
            assert (await anon.request(method, path)).status_code == 401, path
        # Logout without a session has nothing to end and needs no token.
        assert (await anon.post("/auth/logout")).status_code == 204
    async with client_for(app) as member:
        token = await login(member, scene.member)
        assert (await member.get("/api/guilds")).json() == []
        assert (await member.get("/api/session")).json()["user"]["id"] == str(scene.member)
        assert (await member.post("/auth/logout")).status_code == 403
        wrong = await member.post("/auth/logout", headers={"X-CSRF-Token": token + "x"})
        assert wrong.status_code == 403
        assert (await member.get("/api/session")).status_code == 200
    async with client_for(app) as outsider:
        await login(outsider, scene.outsider_admin)
        ids = [g["id"] for g in (await outsider.get("/api/guilds")).json()]
        assert ids == [str(scene.other)]


async def test_a_cookie_replayed_after_logout_is_refused_by_another_dashboard_process(
    database_url: str,
    sandbox: RunningSandbox,
    scene: Scene,
    python_child: PythonChildFactory,
) -> None:
    # Two real `guildkit dashboard` processes on one database, as behind a load balancer.
    _, first = await dashboard_process(python_child, sandbox, database_url)
    _, second = await dashboard_process(python_child, sandbox, database_url)
    guild = f"/api/guilds/{scene.guild}/settings"
    async with (
        httpx.AsyncClient(base_url=first) as victim,
        httpx.AsyncClient(base_url=second) as thief,
    ):
        csrf = await login(victim, scene.admin)
        stolen = victim.cookies.get(SESSION_COOKIE)
        assert stolen
        thief.cookies.set(SESSION_COOKIE, stolen)
        # One session, valid in both processes until logout...
        assert (await thief.get("/api/session")).json()["csrf_token"] == csrf
        assert (await thief.get(guild)).status_code == 200
        logout = await victim.post("/auth/logout", headers={"X-CSRF-Token": csrf})
        assert logout.status_code == 204
        # ...and refused by both after it, whichever process handled the logout.
        for c in (thief, victim):
            c.cookies.set(SESSION_COOKIE, stolen)
            assert (await c.get("/api/session")).status_code == 401
            assert (await c.get("/api/guilds")).status_code == 401
            assert (await c.get(guild)).status_code == 401
            patch = await c.patch(
                guild,
                json={"prefix": "x"},
                headers={"X-CSRF-Token": csrf, "Content-Type": "application/merge-patch+json"},
            )
            assert patch.status_code == 401
            page = await c.get(f"/guilds/{scene.guild}")
            assert page.status_code == 303
            assert page.headers["location"].startswith("/auth/login?next=")
            again = await c.post("/auth/logout", headers={"X-CSRF-Token": csrf})
            assert again.status_code == 204  # nothing left to end


# --- OAuth2 state and PKCE misuse -----------------------------------------------------------


async def _code_and_state(client: httpx.AsyncClient, user_id: int) -> tuple[str, str]:
    """Start a login and consent as `user_id`: the callback's code and state (not yet used)."""
    consent = await authorize(client, user_id)
    return consent.code, consent.state


def _refused(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text[:200]
    assert f"{SESSION_COOKIE}=" not in response.headers.get("set-cookie", "")


async def test_oauth_state_misuse_is_refused(built: Built, scene: Scene) -> None:
    async with client_for(built.app) as victim, client_for(built.app) as attacker:
        code, state = await _code_and_state(victim, scene.owner)
        # The victim's state and code in a browser with no login, or with its own login.
        async with client_for(built.app) as bare:
            _refused(await bare.get("/auth/callback", params={"code": code, "state": state}))
        await attacker.get("/auth/login")
        _refused(await attacker.get("/auth/callback", params={"code": code, "state": state}))
        assert (await attacker.get("/api/session")).status_code == 401
        # None of that consumed the victim's code: the real callback still logs them in.
        done = await victim.get("/auth/callback", params={"code": code, "state": state})
        assert done.status_code == 303
        assert (await victim.get("/api/session")).json()["user"]["id"] == str(scene.owner)
    for params in ({"state": ""}, {"state": "x"}, {"state": None}, {"state": "é"}):
        async with client_for(built.app) as c:
            code, state = await _code_and_state(c, scene.owner)
            query = {"code": code, "state": state, **params}
            sent = {k: v for k, v in query.items() if v is not None}
            _refused(await c.get("/auth/callback", params=sent))
            # A failed callback also ends that login attempt: retrying it is refused too.
            _refused(await c.get("/auth/callback", params={"code": code, "state": state}))
            assert (await c.get("/api/session")).status_code == 401


async def test_oauth_code_reuse_and_tampered_verifier_are_refused(
    built: Built, scene: Scene
) -> None:
    async with client_for(built.app) as c:
        code, state = await _code_and_state(c, scene.owner)
        login_cookie = c.cookies.get(LOGIN_COOKIE)
        assert login_cookie
        assert (
            await c.get("/auth/callback", params={"code": code, "state": state})
        ).status_code == 303
        # Same login cookie, same code, once more: the code is single-use at the token endpoint.
        c.cookies.clear()
        c.cookies.set(LOGIN_COOKIE, login_cookie, domain="dashboard.test")
        _refused(await c.get("/auth/callback", params={"code": code, "state": state}))

    codec = built.dashboard.sessions
    async with client_for(built.app) as c:
        code, state = await _code_and_state(c, scene.owner)
        genuine = codec.decode_login(c.cookies.get(LOGIN_COOKIE))
        assert genuine is not None and genuine.state == state
        # A verifier that does not hash to the challenge (even signed with the real key) is
        # refused by the token endpoint's PKCE check.
        last = "B" if genuine.code_verifier.endswith("A") else "A"
        tampered = LoginAttempt(
            state=state, code_verifier=genuine.code_verifier[:-1] + last, next_path="/"
        )
        assert tampered.code_verifier != genuine.code_verifier
        c.cookies.set(LOGIN_COOKIE, codec.encode_login(tampered), domain="dashboard.test")
        _refused(await c.get("/auth/callback", params={"code": code, "state": state}))
        # An unsigned edit of the cookie does not even decode.
        signed = c.cookies.get(LOGIN_COOKIE) or ""
        c.cookies.set(LOGIN_COOKIE, signed + "x", domain="dashboard.test")
        _refused(await c.get("/auth/callback", params={"code": code, "state": state}))
        assert (await c.get("/api/session")).status_code == 401
