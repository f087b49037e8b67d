"""Secrets never leak: the bot token, the OAuth client secret, the session signing key and users'
Discord access tokens appear in no log line and no response body or header (the session cookie
itself aside), across logins, edits, refusals and failures."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator

import httpx
import pytest

from guildkit.dashboard.context import DashboardOptions
from guildkit.dashboard.discord_api import DiscordClient
from guildkit.dashboard.log_redaction import RedactQuerySecrets, redact
from guildkit.dashboard.service import SettingsService
from guildkit.dashboard.sessions import SESSION_COOKIE
from guildkit.sandbox.runner import RunningSandbox, run_sandbox
from tests.abuse.test_identities import endpoints, send
from tests.dashboard.conftest import (
    SECRET,
    Scene,
    authorize,
    build,
    client_for,
    free_port,
    login,
    reseeded,
    session_cookie,
)


@pytest.fixture
async def sandbox() -> AsyncIterator[RunningSandbox]:
    # Secrets unlike any other string in the system, so finding one anywhere means a leak.
    async with run_sandbox(
        bot_token=f"bot-token-{secrets.token_urlsafe(24)}",
        client_secret=f"client-secret-{secrets.token_urlsafe(24)}",
    ) as running:
        yield reseeded(running)


async def test_no_secret_in_logs_or_responses(
    database_url: str, sandbox: RunningSandbox, scene: Scene, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[httpx.Response] = []
    access_tokens: list[str] = []
    built = build(database_url, sandbox, options=DashboardOptions(write_burst=10_000))
    sessions = built.dashboard.sessions
    # The same dashboard with PostgreSQL unreachable: its 503 path logs the failure.
    db_password = f"pg-password-{secrets.token_urlsafe(16)}"
    dead = build(
        f"postgresql://postgres:{db_password}@127.0.0.1:{free_port()}/guildkit",
        sandbox,
        with_redis=False,
        options=DashboardOptions(write_burst=10_000),
    )
    try:
        for app in (built.app, dead.app):
            async with client_for(app) as client, client_for(built.app) as door:
                for user in (scene.owner, scene.member, scene.outsider_admin):
                    # Sessions are made where PostgreSQL answers; the dead dashboard gets the
                    # cookie, and every request it cannot look up is its 503.
                    csrf = await login(door, user)
                    cookie = session_cookie(door)
                    client.cookies.set(SESSION_COOKIE, cookie, domain="dashboard.test")
                    session = await sessions.load(cookie)
                    assert session is not None
                    access_tokens.append(session.access_token)
                    if app is dead.app:
                        # A login whose session cannot be stored: the 503 page.
                        async with client_for(app) as newcomer:
                            consent = await authorize(newcomer, user)
                            seen.append(await newcomer.get(consent.callback))
                            assert seen[-1].status_code == 503
                    for endpoint in endpoints(app):
                        if endpoint.template.startswith("/auth/"):
                            continue  # logging out comes last
                        for guild in (scene.guild, "nope"):
                            seen.append(await send(client, endpoint, guild, csrf))
                    seen.append(
                        await client.patch(
                            f"/api/guilds/{scene.guild}/settings",
                            content=b'{"prefix": "toolong"}',
                            headers={"X-CSRF-Token": csrf, "Content-Type": "application/json"},
                        )
                    )
                    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"):
                        seen.append(await client.get(path))
                    seen.append(await client.post("/auth/logout", headers={"X-CSRF-Token": csrf}))
                    # A failed login (code refused at Discord) and a bad state.
                    seen.append(await client.get("/auth/callback", params={"code": "x"}))
        # Discord unreachable: the 502 path logs the failure.
        async with client_for(built.app) as client:
            csrf = await login(client, scene.owner)
            session = await sessions.load(session_cookie(client))
            assert session is not None
            access_tokens.append(session.access_token)
            unreachable = DiscordClient(
                f"http://127.0.0.1:{free_port()}/api/v10",
                client_id=sandbox.client_id,
                client_secret=sandbox.client_secret,
                bot_token=sandbox.bot_token,
            )
            await built.dashboard.discord.aclose()
            built.dashboard.discord = unreachable
            built.dashboard.service = SettingsService(
                built.dashboard.store,
                built.dashboard.writer,
                unreachable,
                built.dashboard.metrics,
            )
            for endpoint in endpoints(built.app):
                if not endpoint.template.startswith("/auth/"):
                    seen.append(await send(client, endpoint, scene.guild, csrf))
            seen.append(await client.post("/auth/logout", headers={"X-CSRF-Token": csrf}))
            seen.append(await client.get("/api/session"))
    finally:
        await built.close()
        await dead.close()

    statuses = {r.status_code for r in seen}
    assert {200, 401, 403, 404, 422, 502, 503} <= statuses, statuses
    hidden = {
        "bot token": sandbox.bot_token,
        "client secret": sandbox.client_secret,
        "session key": SECRET,
        "database password": db_password,
        **{f"access token {i}": t for i, t in enumerate(access_tokens)},
    }
    assert all(len(s) >= 16 for s in hidden.values())
    logs = "\n".join(f"{r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in caplog.records)
    assert "PostgreSQL unavailable" in logs and "Discord call failed" in logs
    for name, secret in hidden.items():
        assert secret not in logs, f"{name} in the logs"
        for response in seen:
            visible = response.text + "\n".join(
                f"{k}: {v}" for k, v in response.headers.items() if k.lower() != "set-cookie"
            )
            where = f"{response.request.method} {response.request.url.path}"
            assert secret not in visible, f"{name} in the response to {where}"


def test_access_log_lines_lose_oauth_parameters() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:1", "GET", "/auth/callback?code=SECRETCODE&state=SECRETSTATE&x=1", "1.1", 303),
        None,
    )
    assert RedactQuerySecrets().filter(record)
    line = record.getMessage()
    assert "SECRETCODE" not in line and "SECRETSTATE" not in line
    assert "code=[redacted]&state=[redacted]&x=1" in line
    assert redact("/guilds/1?next=/x") == "/guilds/1?next=/x"
    assert redact("/a?barcode=1") == "/a?barcode=1"
