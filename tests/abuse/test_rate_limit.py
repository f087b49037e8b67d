"""The token-bucket limiter: units on a fake clock, then a flood of PATCHes on the real stack."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse
from sqlalchemy.ext.asyncio import AsyncEngine

from guildkit.dashboard.rate_limit import RateLimit, TokenBuckets, is_limited
from guildkit.dashboard.sessions import SESSION_COOKIE, SessionStore
from tests.dashboard.conftest import SECRET, Built, Scene, client_for, login, stored_session


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_a_burst_then_the_rate() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(rate=10, burst=20, clock=clock)
    assert [buckets.take("a") for _ in range(20)] == [0.0] * 20
    wait = buckets.take("a")
    assert wait == pytest.approx(0.1)
    clock.now += 0.1
    assert buckets.take("a") == 0.0
    assert buckets.take("a") > 0
    # Other keys have their own bucket.
    assert buckets.take("b") == 0.0
    # Idle time refills, but never beyond the burst.
    clock.now += 3600
    assert [buckets.take("a") for _ in range(20)] == [0.0] * 20
    assert buckets.take("a") > 0


def test_refused_requests_do_not_drain_the_bucket_further() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(rate=1, burst=1, clock=clock)
    assert buckets.take("a") == 0.0
    for _ in range(100):
        assert buckets.take("a") > 0
    clock.now += 1.0
    assert buckets.take("a") == 0.0


def test_bucket_memory_is_bounded() -> None:
    buckets = TokenBuckets(rate=1, burst=1, max_keys=100, clock=FakeClock())
    for i in range(1000):
        buckets.take(f"k{i}")
    assert len(buckets) == 100


def test_bucket_rejects_nonsense_limits() -> None:
    with pytest.raises(ValueError):
        TokenBuckets(rate=0, burst=1)
    with pytest.raises(ValueError):
        TokenBuckets(rate=1, burst=0)


def test_what_is_limited() -> None:
    assert is_limited("PATCH", "/api/guilds/1/settings")
    assert is_limited("POST", "/guilds/1/welcome")
    assert is_limited("POST", "/auth/logout")
    assert is_limited("GET", "/auth/login") and is_limited("GET", "/auth/callback")
    assert not is_limited("GET", "/api/guilds/1/settings")
    assert not is_limited("HEAD", "/")


def _tiny_app(store: SessionStore, clock: FakeClock) -> FastAPI:
    app = FastAPI()

    @app.post("/api/write")
    async def write() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/form")
    async def form() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.get("/api/read")
    async def read(request: Request) -> dict[str, bool]:
        return {"ok": True}

    app.add_middleware(RateLimit, sessions=store, rate=1, burst=2, clock=clock)
    return app


async def _session_cookie(store: SessionStore, user_id: int) -> str:
    _, cookie = await stored_session(store, user_id)
    return cookie


async def test_middleware_limits_per_user_and_per_address(engine: AsyncEngine) -> None:
    store = SessionStore(engine, SECRET)
    clock = FakeClock()
    app = _tiny_app(store, clock)

    def client(address: str, cookie: str | None = None) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address, 1234))
        c = httpx.AsyncClient(transport=transport, base_url="http://t")
        if cookie:
            c.cookies.set(SESSION_COOKIE, cookie)
        return c

    one, two = await _session_cookie(store, 1), await _session_cookie(store, 2)
    again = await _session_cookie(store, 1)
    ended_session, ended = await stored_session(store, 1)
    await store.end(ended_session)
    async with (
        client("10.0.0.1", one) as a,
        client("10.0.0.1", two) as b,
        client("10.0.0.3", again) as a_elsewhere,
        client("10.0.0.1") as anon,
        client("10.0.0.2") as other_ip,
        client("10.0.0.1", "forged.cookie.value") as forged,
        client("10.0.0.4", ended) as logged_out,
    ):
        assert [(await a.post("/api/write")).status_code for _ in range(2)] == [200, 200]
        refused = await a.post("/api/write")
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["detail"].startswith("too many requests")
        html = await a.post("/form")
        assert html.status_code == 429 and "text/html" in html.headers["content-type"]
        # Reads are never limited here.
        assert (await a.get("/api/read")).status_code == 200
        # The same user logged in again, elsewhere, shares the bucket...
        assert (await a_elsewhere.post("/api/write")).status_code == 429
        # ...another user from the same address has their own...
        assert (await b.post("/api/write")).status_code == 200
        # ...and so do clients without a session, by address; a forged cookie is no session.
        assert [(await anon.post("/api/write")).status_code for _ in range(2)] == [200, 200]
        assert (await forged.post("/api/write")).status_code == 429
        assert (await other_ip.post("/api/write")).status_code == 200
        # A logged-out cookie is no session either: it cannot reach user 1's (empty) bucket.
        assert (await logged_out.post("/api/write")).status_code == 200
        clock.now += 1.0
        assert (await a.post("/api/write")).status_code == 200


async def test_a_thousand_patches_a_second_are_limited_and_nothing_is_lost(
    built: Built, scene: Scene
) -> None:
    async with client_for(built.app) as client:
        csrf = await login(client, scene.owner)
        url = f"/api/guilds/{scene.guild}/settings"
        headers = {"X-CSRF-Token": csrf, "Content-Type": "application/merge-patch+json"}

        async def one(i: int) -> httpx.Response:
            return await client.patch(
                url,
                json={"prefix": f"p{i}", "moderation": {"blocked_words": [f"w{i}"]}},
                headers=headers,
            )

        started = time.monotonic()
        responses = await asyncio.gather(*(one(i) for i in range(1000)))
        elapsed = time.monotonic() - started
        statuses = [r.status_code for r in responses]
        assert set(statuses) <= {200, 429}, set(statuses)
        accepted = [r for r in responses if r.status_code == 200]
        limited = [r for r in responses if r.status_code == 429]
        options = built.dashboard.options
        assert len(accepted) >= options.write_burst
        assert len(accepted) <= options.write_burst + options.write_rate_per_second * elapsed + 1
        assert all(int(r.headers["retry-after"]) >= 1 for r in limited)

        # Every accepted write is in history, in order, with exactly what it returned.
        versions = sorted(r.json()["version"] for r in accepted)
        assert versions == list(range(1, len(accepted) + 1))
        history = (await client.get(f"{url}/history", params={"limit": 200})).json()
        assert sorted(h["version"] for h in history) == versions
        by_version = {r.json()["version"]: r.json()["settings"] for r in accepted}
        for entry in history:
            after = {d["path"]: d["after"] for d in entry["diff"]}
            assert after["prefix"] == by_version[entry["version"]]["prefix"]
        assert len({h["change_seq"] for h in history}) == len(history)
        # The final document is the last accepted write.
        final = (await client.get(url)).json()
        last = max(accepted, key=lambda r: int(r.json()["version"])).json()
        assert final["version"] == last["version"]
        assert final["settings"] == last["settings"]
        # Reads still work for the flooded session, and a second later it may write again.
        await asyncio.sleep(1.1)
        again = await client.patch(url, json={"prefix": "ok"}, headers=headers)
        assert again.status_code == 200 and again.json()["version"] == last["version"] + 1
