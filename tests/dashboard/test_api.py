"""The JSON API of DESIGN §7 against real PostgreSQL and Redis, with the sandbox as Discord."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import delete, func, insert, select

from guildkit.dashboard.context import DashboardOptions
from guildkit.dashboard.sessions import SESSION_COOKIE, SessionStore
from guildkit.db.schema import bot_processes, dashboard_sessions
from guildkit.sandbox.client import SandboxClient
from guildkit.sandbox.runner import RunningSandbox, run_sandbox
from tests.dashboard.conftest import (
    SECRET,
    Built,
    Scene,
    authorize,
    build,
    client_for,
    free_port,
    login,
    reseeded,
    session_cookie,
    stored_session,
)
from tests.support.fixtures import ProxyFactory
from tests.support.postgres_server import PostgresServer

MERGE = {"Content-Type": "application/merge-patch+json"}


def unsafe(csrf: str, **extra: str) -> dict[str, str]:
    return {"X-CSRF-Token": csrf, **MERGE, **extra}


async def test_login_sets_session_cookie_and_session_endpoint(
    client: httpx.AsyncClient, scene: Scene
) -> None:
    start = await client.get("/auth/login")
    location = start.headers["location"]
    assert "/oauth2/authorize?" in location
    assert "code_challenge_method=S256" in location and "state=" in location
    assert "scope=identify+guilds" in location
    csrf = await login(client, scene.owner)
    body = (await client.get("/api/session")).json()
    assert body["user"]["id"] == str(scene.owner)
    assert body["user"]["display_name"] == "Olive Owner"
    assert body["csrf_token"] == csrf
    # The Set-Cookie of a fresh login carries the cookie attributes.
    again = httpx.AsyncClient(transport=client._transport, base_url=str(client.base_url))
    async with again:
        done = await again.get((await authorize(again, scene.owner)).callback)
        second = await again.get("/api/session")
    set_cookie = done.headers["set-cookie"].lower()
    assert "httponly" in set_cookie and "samesite=lax" in set_cookie
    assert "secure" not in set_cookie  # no https public URL in this test
    # The cookie lives as long as the session, which Discord's token caps (the sandbox: 7 days).
    max_age = int(set_cookie.split("max-age=")[1].split(";")[0])
    assert 8 * 3600 - 60 <= max_age <= 8 * 3600
    # Each login is its own session, with its own CSRF token; the first one still works.
    assert second.json()["csrf_token"] != csrf
    assert (await client.get("/api/session")).json()["csrf_token"] == csrf


async def test_the_cookie_holds_only_a_signed_secret_and_the_row_only_its_hash(
    client: httpx.AsyncClient, built: Built, scene: Scene
) -> None:
    await login(client, scene.owner)
    cookie = session_cookie(client)
    body = (await client.get("/api/session")).json()
    # Nothing about the user, the CSRF token or the Discord token is in the cookie...
    secret_b64 = URLSafeTimedSerializer(SECRET, salt="guildkit.dashboard.session.v2").loads(cookie)
    secret = base64.urlsafe_b64decode(secret_b64)
    assert len(secret) == 32
    async with built.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(dashboard_sessions).where(dashboard_sessions.c.user_id == scene.owner)
            )
        ).all()
    assert len(rows) == 1
    row = rows[0]
    for value in (body["csrf_token"], row.access_token, str(scene.owner), "owner"):
        assert value not in cookie and value not in secret_b64
    # ...and the row is keyed by the secret's sha256: a copy of the table yields no cookie.
    assert row.id == hashlib.sha256(secret).digest()
    assert secret_b64 not in str(tuple(row))
    assert row.csrf_token == body["csrf_token"]
    assert row.expires_at.timestamp() == body["expires_at"]
    # A correctly signed cookie for a secret that has no row is no session.
    unknown = URLSafeTimedSerializer(SECRET, salt="guildkit.dashboard.session.v2").dumps(
        base64.urlsafe_b64encode(b"\x01" * 32).decode()
    )
    client.cookies.set(SESSION_COOKIE, unknown, domain="dashboard.test")
    assert (await client.get("/api/session")).status_code == 401


async def test_callback_refuses_wrong_state(client: httpx.AsyncClient, scene: Scene) -> None:
    await client.get("/auth/login")
    response = await client.get("/auth/callback", params={"code": "x", "state": "forged"})
    assert response.status_code == 400
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")
    assert (await client.get("/api/session")).status_code == 401


async def test_callback_refuses_access_denied(client: httpx.AsyncClient, scene: Scene) -> None:
    start = await client.get("/auth/login")
    state = httpx.URL(start.headers["location"]).params["state"]
    response = await client.get("/auth/callback", params={"error": "access_denied", "state": state})
    assert response.status_code == 400


async def test_login_redirect_is_never_open(client: httpx.AsyncClient, scene: Scene) -> None:
    await login(client, scene.owner, next_path="/")
    consent = await authorize(client, scene.owner, next_path="//evil.example/x")
    done = await client.get(consent.callback)
    assert done.headers["location"] == "/"


async def test_guilds_lists_manageable_guilds_with_bot_presence(
    client: httpx.AsyncClient, scene: Scene
) -> None:
    await login(client, scene.owner)
    guilds = {g["id"]: g for g in (await client.get("/api/guilds")).json()}
    assert guilds[str(scene.guild)]["bot_present"] is True
    assert guilds[str(scene.botless)]["bot_present"] is False
    assert guilds[str(scene.guild)]["name"] == "Test <Guild>"
    assert str(scene.other) not in guilds


async def test_member_without_rights_sees_no_guilds(
    client: httpx.AsyncClient, scene: Scene
) -> None:
    await login(client, scene.member)
    assert (await client.get("/api/guilds")).json() == []


async def test_get_settings_defaults_with_strong_etag(
    client: httpx.AsyncClient, scene: Scene
) -> None:
    await login(client, scene.admin)
    response = await client.get(f"/api/guilds/{scene.guild}/settings")
    assert response.status_code == 200
    assert response.headers["etag"] == '"0"'
    doc = response.json()
    assert doc["guild_id"] == str(scene.guild) and doc["version"] == 0
    assert doc["settings"]["prefix"] == "!"
    cached = await client.get(
        f"/api/guilds/{scene.guild}/settings", headers={"If-None-Match": '"0"'}
    )
    assert cached.status_code == 304


async def test_patch_applies_merge_patch_and_records_actor(
    client: httpx.AsyncClient, scene: Scene
) -> None:
    csrf = await login(client, scene.manager)
    url = f"/api/guilds/{scene.guild}/settings"
    first = await client.patch(
        url, json={"prefix": "?", "welcome": {"enabled": True}}, headers=unsafe(csrf)
    )
    assert first.status_code == 200, first.text
    assert first.headers["etag"] == '"1"'
    doc = first.json()
    assert doc["version"] == 1 and doc["settings"]["prefix"] == "?"
    assert doc["settings"]["welcome"]["enabled"] is True
    assert doc["settings"]["welcome"]["message"] == "Welcome {user} to {server}!"
    assert doc["updated_by"] == f"discord:{scene.manager} (manager)"
    # application/json works too, and null restores a default.
    second = await client.patch(
        url,
        content=json.dumps({"prefix": None}),
        headers={"X-CSRF-Token": csrf, "Content-Type": "application/json", "If-Match": '"1"'},
    )
    assert second.status_code == 200, second.text
    assert second.json()["settings"]["prefix"] == "!" and second.json()["version"] == 2


async def test_patch_if_match_mismatch_is_412_and_writes_nothing(
    client: httpx.AsyncClient, scene: Scene
) -> None:
    csrf = await login(client, scene.owner)
    url = f"/api/guilds/{scene.guild}/settings"
    assert (await client.patch(url, json={"prefix": "a"}, headers=unsafe(csrf))).status_code == 200
    stale = await client.patch(
        url, json={"prefix": "b"}, headers=unsafe(csrf, **{"If-Match": '"0"'})
    )
    assert stale.status_code == 412
    assert stale.json()["current_version"] == 1
    assert stale.headers["etag"] == '"1"'
    weak = await client.patch(
        url, json={"prefix": "b"}, headers=unsafe(csrf, **{"If-Match": 'W/"1"'})
    )
    assert weak.status_code == 412
    current = (await client.get(url)).json()
    assert current["version"] == 1 and current["settings"]["prefix"] == "a"


async def test_patch_validation_errors_are_422_field_level_and_write_nothing(
    client: httpx.AsyncClient, scene: Scene
) -> None:
    csrf = await login(client, scene.owner)
    url = f"/api/guilds/{scene.guild}/settings"
    bad = await client.patch(
        url,
        json={"prefix": "toolong", "moderation": {"spam_max_messages": 99}, "bogus": 1},
        headers=unsafe(csrf),
    )
    assert bad.status_code == 422
    locs = {tuple(e["loc"]) for e in bad.json()["detail"]}
    assert ("body", "prefix") in locs
    assert ("body", "moderation", "spam_max_messages") in locs
    assert ("body", "bogus") in locs
    assert all({"loc", "msg", "type"} <= set(e) for e in bad.json()["detail"])
    not_json = await client.patch(url, content=b"{nope", headers=unsafe(csrf))
    assert not_json.status_code == 422
    not_object = await client.patch(url, content=b"[1]", headers=unsafe(csrf))
    assert not_object.status_code == 422
    assert (await client.get(url)).json()["version"] == 0
    assert (await client.get(f"{url}/history")).json() == []


async def test_patch_checks_channels_and_roles_against_discord(
    client: httpx.AsyncClient, scene: Scene
) -> None:
    csrf = await login(client, scene.owner)
    url = f"/api/guilds/{scene.guild}/settings"
    unknown = await client.patch(
        url,
        json={
            "welcome": {"channel_id": "123456789012345678"},
            "auto_roles": ["987654321098765432"],
        },
        headers=unsafe(csrf),
    )
    assert unknown.status_code == 422
    by_loc = {tuple(e["loc"]): e for e in unknown.json()["detail"]}
    assert by_loc[("body", "welcome", "channel_id")]["type"] == "unknown_channel"
    assert by_loc[("body", "auto_roles", 0)]["type"] == "unknown_role"
    known = await client.patch(
        url,
        json={
            "welcome": {"channel_id": str(scene.text_channel)},
            "log_channel_id": str(scene.log_channel),
            "auto_roles": [str(scene.role)],
        },
        headers=unsafe(csrf),
    )
    assert known.status_code == 200, known.text
    everyone = await client.patch(
        url, json={"auto_roles": [str(scene.guild)]}, headers=unsafe(csrf)
    )
    assert everyone.status_code == 422


async def test_patch_needs_a_json_media_type(client: httpx.AsyncClient, scene: Scene) -> None:
    csrf = await login(client, scene.owner)
    response = await client.patch(
        f"/api/guilds/{scene.guild}/settings",
        content=b'{"prefix": "?"}',
        headers={"X-CSRF-Token": csrf, "Content-Type": "text/plain"},
    )
    assert response.status_code == 415


async def test_oversized_body_is_413(client: httpx.AsyncClient, scene: Scene) -> None:
    csrf = await login(client, scene.owner)
    big = json.dumps({"welcome": {"message": "x" * 300_000}})
    response = await client.patch(
        f"/api/guilds/{scene.guild}/settings", content=big, headers=unsafe(csrf)
    )
    assert response.status_code == 413
    assert "frame-ancestors" in response.headers["content-security-policy"]

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(300):
            yield b" " * 1024

    streamed = await client.patch(
        f"/api/guilds/{scene.guild}/settings", content=chunks(), headers=unsafe(csrf)
    )
    assert streamed.status_code == 413


async def test_authorization_matrix(
    client: httpx.AsyncClient, built: Built, scene: Scene, sandbox: RunningSandbox
) -> None:
    g = scene.guild
    reads = [
        f"/api/guilds/{g}/settings",
        f"/api/guilds/{g}/settings/history",
        f"/api/guilds/{g}/sync",
    ]

    async def refused_everywhere(c: httpx.AsyncClient, status: int, csrf: str = "") -> None:
        for path in [*reads, "/api/guilds"] if status == 401 else reads:
            assert (await c.get(path)).status_code == status, path
        patch = await c.patch(
            f"/api/guilds/{g}/settings", json={"prefix": "x"}, headers=unsafe(csrf)
        )
        assert patch.status_code == status
        revert = await c.post(
            f"/api/guilds/{g}/settings/revert", json={"version": 0}, headers=unsafe(csrf)
        )
        assert revert.status_code == status

    # No session at all.
    await refused_everywhere(client, 401)
    assert (await client.get("/api/session")).status_code == 401

    # A forged cookie, and one signed with another key (for a session that exists).
    client.cookies.set(SESSION_COOKIE, "eyJmb3JnZWQiOnRydWV9.AAAA.BBBB", domain="dashboard.test")
    await refused_everywhere(client, 401)
    other_key = SessionStore(built.engine, "some-other-secret-key-entirely-different")
    forged, forged_cookie = await stored_session(other_key, scene.owner)
    client.cookies.set(SESSION_COOKIE, forged_cookie, domain="dashboard.test")
    await refused_everywhere(client, 401, forged.csrf_token)

    # An expired session (correct key, expiry in the past).
    expired, expired_cookie = await stored_session(
        built.dashboard.sessions, scene.owner, token_expires_in=60, now=time.time() - 3600
    )
    client.cookies.set(SESSION_COOKIE, expired_cookie, domain="dashboard.test")
    await refused_everywhere(client, 401, expired.csrf_token)
    client.cookies.clear()

    # A member of the guild without Administrator or Manage Server.
    async with client_for(built.app) as member:
        csrf = await login(member, scene.member)
        await refused_everywhere(member, 403, csrf)

    # An admin of another guild, not in this one: the guild is unknown to them.
    async with client_for(built.app) as outsider:
        csrf = await login(outsider, scene.outsider_admin)
        await refused_everywhere(outsider, 404, csrf)

    # A real admin without, or with a wrong, CSRF token.
    async with client_for(built.app) as admin:
        csrf = await login(admin, scene.admin)
        no_token = await admin.patch(
            f"/api/guilds/{g}/settings", json={"prefix": "x"}, headers=MERGE
        )
        assert no_token.status_code == 403
        wrong = await admin.patch(
            f"/api/guilds/{g}/settings", json={"prefix": "x"}, headers=unsafe(csrf + "x")
        )
        assert wrong.status_code == 403
        no_token_revert = await admin.post(f"/api/guilds/{g}/settings/revert", json={"version": 0})
        assert no_token_revert.status_code == 403
        assert (await admin.post("/auth/logout")).status_code == 403
        assert (await admin.get(f"/api/guilds/{g}/settings")).json()["version"] == 0


async def test_rights_are_rechecked_on_write(
    database_url: str, sandbox: RunningSandbox, sb: SandboxClient, scene: Scene
) -> None:
    # With a zero freshness window every write asks Discord again (the default allows 10 s).
    built = build(
        database_url, sandbox, options=DashboardOptions(write_permission_max_age_seconds=0)
    )
    try:
        async with client_for(built.app) as client:
            csrf = await login(client, scene.admin)
            url = f"/api/guilds/{scene.guild}/settings"
            ok = await client.patch(url, json={"prefix": "1"}, headers=unsafe(csrf))
            assert ok.status_code == 200
            await sb.remove_member(scene.guild, scene.admin)
            refused = await client.patch(url, json={"prefix": "2"}, headers=unsafe(csrf))
            assert refused.status_code == 404
            assert (await built.dashboard.store.get(scene.guild)).settings.prefix == "1"
    finally:
        await built.close()


async def test_unknown_guild_is_404(client: httpx.AsyncClient, scene: Scene) -> None:
    await login(client, scene.owner)
    assert (await client.get("/api/guilds/not-a-number/settings")).status_code == 404
    assert (await client.get("/api/guilds/123456789012345678/settings")).status_code == 404
    assert (await client.get(f"/api/guilds/{2**64}/settings")).status_code == 404


async def test_history_newest_first_and_revert(client: httpx.AsyncClient, scene: Scene) -> None:
    csrf = await login(client, scene.owner)
    base = f"/api/guilds/{scene.guild}/settings"
    for prefix in ("a", "b", "c"):
        assert (
            await client.patch(base, json={"prefix": prefix}, headers=unsafe(csrf))
        ).status_code == 200
    history = (await client.get(f"{base}/history")).json()
    assert [h["version"] for h in history] == [3, 2, 1]
    assert history[0]["diff"] == [{"path": "prefix", "before": "b", "after": "c"}]
    assert history[0]["actor"].startswith(f"discord:{scene.owner}")
    assert history[0]["change_seq"] > history[1]["change_seq"]
    datetime.fromisoformat(history[0]["at"])

    reverted = await client.post(
        f"{base}/revert", json={"version": 1}, headers={"X-CSRF-Token": csrf, "If-Match": '"3"'}
    )
    assert reverted.status_code == 200, reverted.text
    assert reverted.json()["version"] == 4 and reverted.json()["settings"]["prefix"] == "a"
    assert reverted.headers["etag"] == '"4"'
    stale = await client.post(
        f"{base}/revert", json={"version": 2}, headers={"X-CSRF-Token": csrf, "If-Match": '"3"'}
    )
    assert stale.status_code == 412
    missing = await client.post(
        f"{base}/revert", json={"version": 99}, headers={"X-CSRF-Token": csrf}
    )
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["body", "version"]
    limited = (await client.get(f"{base}/history", params={"limit": 2})).json()
    assert [h["version"] for h in limited] == [4, 3]


async def test_sync_reports_live_processes(
    client: httpx.AsyncClient, built: Built, scene: Scene
) -> None:
    csrf = await login(client, scene.owner)
    url = f"/api/guilds/{scene.guild}/settings"
    written = await client.patch(url, json={"prefix": "s"}, headers=unsafe(csrf))
    seq = (await client.get(f"/api/guilds/{scene.guild}/settings/history")).json()[0]["change_seq"]
    assert written.status_code == 200
    now = datetime.now(UTC)
    names = [f"test-{scene.guild}-{i}" for i in range(3)]
    rows = [
        (names[0], seq, now),
        (names[1], seq - 1, now),
        (names[2], 0, now - timedelta(minutes=10)),  # dead: ignored
    ]
    async with built.engine.begin() as conn:
        for name, applied, beat in rows:
            await conn.execute(
                insert(bot_processes).values(
                    instance_id=name,
                    shard_ids=[0],
                    shard_count=1,
                    applied_change_seq=applied,
                    heartbeat_at=beat,
                    host="test",
                    pid=1,
                )
            )
    try:
        body = (await client.get(f"/api/guilds/{scene.guild}/sync")).json()
        mine = [p for p in body["processes"] if p["instance_id"] in names]
        assert {p["instance_id"] for p in mine} == set(names[:2])
        assert body["change_seq"] == seq and body["version"] == 1
        assert body["live"] is False
        async with built.engine.begin() as conn:
            await conn.execute(
                bot_processes.update()
                .where(bot_processes.c.instance_id == names[1])
                .values(applied_change_seq=seq)
            )
            # Other tests' processes must not disturb this check.
            await conn.execute(
                bot_processes.update()
                .where(bot_processes.c.instance_id.not_in(names))
                .values(heartbeat_at=now - timedelta(minutes=10))
            )
        body = (await client.get(f"/api/guilds/{scene.guild}/sync")).json()
        assert body["live"] is True
    finally:
        async with built.engine.begin() as conn:
            await conn.execute(delete(bot_processes).where(bot_processes.c.instance_id.in_(names)))


async def test_fifty_concurrent_patches_none_lost(
    database_url: str, sandbox: RunningSandbox, scene: Scene
) -> None:
    # A burst beyond the default rate limit: this test is about concurrency, not flooding.
    built = build(database_url, sandbox, pool_size=10, options=DashboardOptions(write_burst=100))
    try:
        async with client_for(built.app) as client:
            csrf = await login(client, scene.owner)
            url = f"/api/guilds/{scene.guild}/settings"

            async def one(i: int) -> httpx.Response:
                return await client.patch(
                    url,
                    json={"moderation": {"blocked_words": [f"w{i}"]}, "prefix": f"p{i}"},
                    headers=unsafe(csrf),
                )

            responses = await asyncio.gather(*(one(i) for i in range(50)))
            assert [r.status_code for r in responses] == [200] * 50, [
                r.text for r in responses if r.status_code != 200
            ]
            versions = sorted(r.json()["version"] for r in responses)
            assert versions == list(range(1, 51))
            history = (await client.get(f"{url}/history", params={"limit": 100})).json()
            assert sorted(h["version"] for h in history) == list(range(1, 51))
            # Each accepted write is in history with exactly the content it returned.
            by_version = {r.json()["version"]: r.json()["settings"]["prefix"] for r in responses}
            for h in history:
                prefixes = [d["after"] for d in h["diff"] if d["path"] == "prefix"]
                assert prefixes == [by_version[h["version"]]]
            assert len({h["change_seq"] for h in history}) == 50
    finally:
        await built.close()


async def test_postgres_unreachable_is_503_never_500(
    database_url: str, sandbox: RunningSandbox, scene: Scene, tcp_proxy: ProxyFactory
) -> None:
    # The session's database through a proxy that can refuse every connection.
    where = urlsplit(database_url)
    proxy = tcp_proxy(where.hostname or "127.0.0.1", where.port or 5432)
    built = build(proxy.url("postgresql", where.path, user="postgres"), sandbox, with_redis=False)
    try:
        async with client_for(built.app) as client, client_for(built.app) as newcomer:
            csrf = await login(client, scene.owner)
            consent = await authorize(newcomer, scene.admin)
            proxy.cut(refuse=True)
            base = f"/api/guilds/{scene.guild}/settings"
            responses = [
                # The session itself cannot be looked up: every authenticated request is a 503.
                await client.get("/api/session"),
                await client.get("/api/guilds"),
                await client.get(base),
                await client.patch(base, json={"prefix": "?"}, headers=unsafe(csrf)),
                await client.get(f"{base}/history"),
                await client.post(
                    f"{base}/revert", json={"version": 1}, headers={"X-CSRF-Token": csrf}
                ),
                await client.get(f"/api/guilds/{scene.guild}/sync"),
                await client.post("/auth/logout", headers={"X-CSRF-Token": csrf}),
            ]
            for response in responses:
                assert response.status_code == 503, response.text
                assert response.headers["retry-after"]
                if response.request.url.path.startswith("/api/"):
                    assert "PostgreSQL" in response.json()["detail"]
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["postgresql"]["ok"] is False
            assert (await client.get("/healthz")).status_code == 200
            for page in ("/", f"/guilds/{scene.guild}", f"/guilds/{scene.guild}/history"):
                response = await client.get(page)
                assert response.status_code == 503, page
                assert (
                    "PostgreSQL" in response.text
                    and "text/html" in response.headers["content-type"]
                )
            # Without a cookie nothing needs the database: the start page still renders.
            async with client_for(built.app) as anonymous:
                assert (await anonymous.get("/")).status_code == 200
            # A login cannot store its session: a clear 503 page, no cookie.
            failed = await newcomer.get(consent.callback)
            assert failed.status_code == 503 and "PostgreSQL" in failed.text
            assert SESSION_COOKIE not in failed.headers.get("set-cookie", "")
            # Back again: the session survived (logout was refused, not half done).
            proxy.restore()
            assert (await client.get("/api/session")).json()["csrf_token"] == csrf
            assert (await client.get(base)).status_code == 200
    finally:
        await built.close()


async def test_health_ready_metrics_and_headers(client: httpx.AsyncClient, scene: Scene) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["postgresql"]["ok"] is True
    assert ready.json()["checks"]["redis"]["ok"] is True
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert "guildkit_dashboard_requests_total" in metrics.text
    assert 'route="/readyz"' in metrics.text
    headers = (await client.get("/")).headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"]
    assert (await client.get("/docs")).status_code == 200
    spec = (await client.get("/openapi.json")).json()
    assert "/api/guilds/{guild_id}/settings" in spec["paths"]


async def test_logout_ends_the_session_in_every_dashboard_process(
    database_url: str,
    sandbox: RunningSandbox,
    client: httpx.AsyncClient,
    built: Built,
    scene: Scene,
) -> None:
    csrf = await login(client, scene.owner)
    stolen = session_cookie(client)
    # A second dashboard on the same database (another process, as far as it can tell).
    other = build(database_url, sandbox)
    try:
        async with client_for(other.app) as elsewhere:
            elsewhere.cookies.set(SESSION_COOKIE, stolen, domain="dashboard.test")
            assert (await elsewhere.get("/api/session")).json()["csrf_token"] == csrf
            response = await client.post("/auth/logout", headers={"X-CSRF-Token": csrf})
            assert response.status_code == 204
            assert 'guildkit_session=""' in response.headers["set-cookie"]
            assert (await client.get("/api/session")).status_code == 401
            # The row is gone: a copy of the old cookie is refused by both processes.
            for c in (client, elsewhere):
                c.cookies.set(SESSION_COOKIE, stolen, domain="dashboard.test")
                assert (await c.get("/api/session")).status_code == 401
                assert (await c.get("/api/guilds")).status_code == 401
                assert (await c.get(f"/api/guilds/{scene.guild}/settings")).status_code == 401
                refused = await c.patch(
                    f"/api/guilds/{scene.guild}/settings",
                    json={"prefix": "x"},
                    headers=unsafe(csrf),
                )
                assert refused.status_code == 401
        async with built.engine.connect() as conn:
            left = await conn.scalar(
                select(func.count())
                .select_from(dashboard_sessions)
                .where(dashboard_sessions.c.csrf_token == csrf)
            )
        assert left == 0
    finally:
        await other.close()


async def test_redis_down_never_fails_a_write(
    database_url: str, sandbox: RunningSandbox, scene: Scene
) -> None:
    # A Redis that refuses connections: the write commits, invalidation is skipped, ready stays.
    built = build(database_url, sandbox, redis_url=f"redis://127.0.0.1:{free_port()}")
    try:
        async with client_for(built.app) as client:
            csrf = await login(client, scene.owner)
            started = time.perf_counter()
            response = await client.patch(
                f"/api/guilds/{scene.guild}/settings", json={"prefix": "r"}, headers=unsafe(csrf)
            )
            assert response.status_code == 200 and response.json()["version"] == 1
            assert time.perf_counter() - started < 5
            ready = await client.get("/readyz")
            assert ready.status_code == 200
            assert ready.json()["checks"]["redis"]["ok"] is False
    finally:
        await built.close()


async def test_private_postgres_stopped_then_restarted(
    postgres_server: PostgresServer, sandbox: RunningSandbox, scene: Scene
) -> None:
    built = build(postgres_server.url_for("guildkit"), sandbox, with_redis=False)
    try:
        async with client_for(built.app) as client:
            csrf = await login(client, scene.owner)
            url = f"/api/guilds/{scene.guild}/settings"
            assert (
                await client.patch(url, json={"prefix": "1"}, headers=unsafe(csrf))
            ).status_code == 200
            await asyncio.to_thread(postgres_server.stop, "fast")
            down = await client.patch(url, json={"prefix": "2"}, headers=unsafe(csrf))
            assert down.status_code == 503 and "PostgreSQL" in down.json()["detail"]
            assert down.headers["retry-after"]
            assert (await client.get(url)).status_code == 503
            assert (await client.get("/readyz")).status_code == 503
            await asyncio.to_thread(postgres_server.start)
            up = await client.patch(url, json={"prefix": "3"}, headers=unsafe(csrf))
            assert up.status_code == 200 and up.json()["version"] == 2
            history = (await client.get(f"{url}/history")).json()
            assert [h["diff"][0]["after"] for h in history] == ["3", "1"]  # "2" never written
    finally:
        await built.close()


async def test_discord_unreachable_is_502_with_a_clear_message(database_url: str) -> None:
    async with run_sandbox() as running:
        own = reseeded(running)
        async with SandboxClient(own.base_url) as control:
            owner = await control.create_user("solo")
            guild = await control.create_guild(f"Solo {free_port()}", owner.id)
        built = build(
            database_url,
            own,
            options=DashboardOptions(write_permission_max_age_seconds=0),
        )
        client = client_for(built.app)
        csrf = await login(client, owner.id)
    # The stand-in is gone now: Discord is unreachable.
    try:
        url = f"/api/guilds/{guild.id}/settings"
        response = await client.patch(url, json={"prefix": "?"}, headers=unsafe(csrf))
        assert response.status_code == 502
        assert "Discord" in response.json()["detail"]
        assert (await client.get("/api/guilds")).status_code == 502
        assert (await built.dashboard.store.get(guild.id)).version == 0
    finally:
        await client.aclose()
        await built.close()
