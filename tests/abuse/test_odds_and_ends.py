"""Smaller abuses: metric label flooding, open-redirect tricks, logout bookkeeping."""

from __future__ import annotations

import time

import httpx
import pytest
from sqlalchemy import func, select

from guildkit.dashboard.auth import safe_next
from guildkit.db.schema import dashboard_sessions
from tests.dashboard.conftest import Built, Scene, authorize, client_for, login, stored_session


async def test_made_up_methods_do_not_grow_the_metrics(client: httpx.AsyncClient) -> None:
    for i in range(50):
        response = await client.request(f"BREW{i}", "/healthz")
        assert response.status_code in (405, 429)  # unknown methods count as writes
    metrics = (await client.get("/metrics")).text
    assert "BREW" not in metrics
    assert 'method="other"' in metrics


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/x",
        "/\\evil.example",
        "\\\\evil.example",
        "https://evil.example",
        "/\t/evil.example",
        "/\n/evil.example",
        "/%2F/evil.example",
        "/\r\nSet-Cookie: x=1",
        "javascript:alert(1)",
        " //evil.example",
    ],
)
async def test_login_never_redirects_off_site(built: Built, scene: Scene, target: str) -> None:
    async with client_for(built.app) as c:
        consent = await authorize(c, scene.owner, next_path=target)
        done = await c.get("/auth/callback", params={"code": consent.code, "state": consent.state})
        assert done.status_code == 303
        location = done.headers["location"]
        # What a browser does with it: strip tabs and newlines, then resolve against the site.
        cleaned = location.replace("\t", "").replace("\n", "").replace("\r", "")
        resolved = httpx.URL("http://dashboard.test/").join(cleaned)
        assert resolved.host == "dashboard.test", (target, location)
        assert "set-cookie" not in {k.lower() for k in done.headers if k.lower() != "set-cookie"}
        assert safe_next(target) in ("/", target)


async def test_ended_and_expired_sessions_leave_no_rows_behind(built: Built, scene: Scene) -> None:
    """Logging out deletes the session's row; expired rows go at a later login (bounded), so
    the table never grows with sessions nobody can use."""
    store = built.dashboard.sessions
    table = dashboard_sessions.c

    async def rows(csrf_tokens: list[str]) -> int:
        async with built.engine.connect() as conn:
            query = select(func.count()).where(table.csrf_token.in_(csrf_tokens))
            return int(await conn.scalar(query) or 0)

    async with client_for(built.app) as c:
        csrf = await login(c, scene.owner)
        assert await rows([csrf]) == 1
        assert (await c.post("/auth/logout", headers={"X-CSRF-Token": csrf})).status_code == 204
        assert await rows([csrf]) == 0
    expired = [
        (await stored_session(store, scene.member, token_expires_in=1, now=time.time() - 60))[0]
        for _ in range(3)
    ]
    tokens = [s.csrf_token for s in expired]
    # (each of those logins already purged the ones before it)
    assert await rows(tokens) <= 1
    async with client_for(built.app) as c:
        await login(c, scene.member)
    assert await rows(tokens) == 0
