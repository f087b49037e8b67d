"""Smaller abuses: metric label flooding, open-redirect tricks, logout bookkeeping."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from guildkit.dashboard.auth import safe_next
from guildkit.dashboard.sessions import SessionCodec
from tests.dashboard.conftest import SECRET, Built, Scene, client_for


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
        start = await c.get("/auth/login", params={"next": target})
        async with httpx.AsyncClient(follow_redirects=False) as browser:
            consent = await browser.get(f"{start.headers['location']}&sandbox_user={scene.owner}")
        query = parse_qs(urlsplit(consent.headers["location"]).query)
        done = await c.get(
            "/auth/callback", params={"code": query["code"][0], "state": query["state"][0]}
        )
        assert done.status_code == 303
        location = done.headers["location"]
        # What a browser does with it: strip tabs and newlines, then resolve against the site.
        cleaned = location.replace("\t", "").replace("\n", "").replace("\r", "")
        resolved = httpx.URL("http://dashboard.test/").join(cleaned)
        assert resolved.host == "dashboard.test", (target, location)
        assert "set-cookie" not in {k.lower() for k in done.headers if k.lower() != "set-cookie"}
        assert safe_next(target) in ("/", target)


def test_ended_sessions_are_refused_and_forgotten_once_expired() -> None:
    codec = SessionCodec(SECRET)
    now = time.time()

    def session(expires_in: int) -> str:
        return codec.encode(
            codec.new_session(
                user_id="1",
                username="u",
                display_name="u",
                avatar=None,
                access_token="t",
                token_expires_in=expires_in,
                now=now,
            )
        )

    short, long, other = session(60), session(3600), session(3600)
    for cookie in (short, long):
        decoded = codec.decode(cookie)
        assert decoded is not None
        codec.end(decoded, now=now)
        assert codec.decode(cookie) is None
    assert codec.decode(other) is not None
    # Bookkeeping for ended sessions is dropped once they would have expired anyway.
    later = codec.decode(other)
    assert later is not None
    codec.end(later, now=now + 120)
    assert len(codec._ended) == 2
