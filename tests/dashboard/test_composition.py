"""The composition root and cookie settings that depend on configuration."""

from __future__ import annotations

import httpx

from guildkit.config import load_config
from guildkit.dashboard.composition import build_app
from guildkit.dashboard.context import DashboardOptions
from guildkit.sandbox.runner import RunningSandbox
from tests.dashboard.conftest import BASE_URL, Scene, authorize, build, client_for, free_port


async def test_build_app_connects_to_nothing_until_asked() -> None:
    config = load_config(
        DATABASE_URL=f"postgresql://postgres@127.0.0.1:{free_port()}/none",
        REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
        DISCORD_API_BASE=f"http://127.0.0.1:{free_port()}/api/v10",
        DISCORD_CLIENT_ID="1",
        GUILDKIT_SECRET_KEY="composition-test-secret-0123456789",
    )
    app = build_app(config)  # nothing listens on any of those ports: must not matter yet
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as client,
    ):
        assert (await client.get("/healthz")).status_code == 200
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["redis"]["ok"] is False
        login = await client.get("/auth/login")
        assert login.status_code == 302
        assert login.headers["location"].startswith(config.discord_api_base + "/oauth2/authorize?")


async def test_https_public_url_makes_cookies_secure(
    database_url: str, sandbox: RunningSandbox, scene: Scene
) -> None:
    built = build(
        database_url, sandbox, options=DashboardOptions(public_url="https://dash.example")
    )
    try:
        async with client_for(built.app) as client:
            consent = await authorize(client, scene.owner)
            assert "secure" in consent.start.headers["set-cookie"].lower()
            location = httpx.URL(consent.start.headers["location"])
            assert location.params["redirect_uri"] == "https://dash.example/auth/callback"
            assert consent.redirect.host == "dash.example"
            # The login cookie is Secure, so an http client would not send it: pass it by hand.
            login_cookie = consent.start.headers["set-cookie"].split(";")[0]
            done = await client.get(consent.callback, headers={"Cookie": login_cookie})
            assert done.status_code == 303
            cookie = done.headers["set-cookie"].lower()
            assert "guildkit_session=" in cookie
            assert "secure" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    finally:
        await built.close()
