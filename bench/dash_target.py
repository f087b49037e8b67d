"""guildkit's dashboard as a benchmark target: the sandbox (Discord) in one process, the dashboard
under uvicorn in another, one user logged in through the real OAuth2 flow, owning the guilds the
load generator reads and patches. Imported only when `guildkit.dashboard` exists."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx
from tests.support.processes import ChildProcess, free_port
from tests.support.redis_server import RedisServer

from bench.dashboard import Target, start_uvicorn
from bench.env import BenchDatabase
from guildkit.sandbox import DEFAULT_BOT_TOKEN, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from guildkit.sandbox.client import SandboxClient

SESSION_COOKIE = "guildkit_session"


async def _login(base_url: str, user_id: int) -> tuple[str, str]:
    """(session cookie value, CSRF token) after the dashboard's real OAuth2 login."""
    async with httpx.AsyncClient(base_url=base_url, follow_redirects=False, timeout=30) as client:
        start = await client.get("/auth/login", params={"next": "/"})
        assert start.status_code == 302, start.text
        async with httpx.AsyncClient(follow_redirects=False, timeout=30) as browser:
            consent = await browser.get(f"{start.headers['location']}&sandbox_user={user_id}")
        assert consent.status_code == 302, consent.text
        back = urlsplit(consent.headers["location"])
        done = await client.get(f"{back.path}?{back.query}")
        assert done.status_code in (302, 303), done.text
        session = await client.get("/api/session")
        assert session.status_code == 200, session.text
        cookie = client.cookies.get(SESSION_COOKIE)
        assert cookie
        return cookie, str(session.json()["csrf_token"])


@contextlib.asynccontextmanager
async def guildkit_dashboard(
    db: BenchDatabase, guilds: int, factory: str = "bench.dash_app:create"
) -> AsyncIterator[Target]:
    redis = RedisServer()
    sandbox_port = free_port()
    sandbox = ChildProcess.python_module("bench.sandbox_proc", "--port", str(sandbox_port))
    server: ChildProcess | None = None
    try:
        sandbox.wait_for_line(lambda line: line.startswith("sandbox ready"), timeout=60)
        sandbox_base = f"http://127.0.0.1:{sandbox_port}"
        async with SandboxClient(sandbox_base) as sb:
            owner = await sb.create_user("bench-owner")
            guild_ids = [(await sb.create_guild(f"Bench {i}", owner.id)).id for i in range(guilds)]
        env = {
            "DATABASE_URL": db.url,
            "REDIS_URL": redis.url,
            "DISCORD_API_BASE": f"{sandbox_base}/api/v10",
            "DISCORD_TOKEN": DEFAULT_BOT_TOKEN,
            "DISCORD_CLIENT_ID": DEFAULT_CLIENT_ID,
            "DISCORD_CLIENT_SECRET": DEFAULT_CLIENT_SECRET,
            "GUILDKIT_SECRET_KEY": "bench-secret-key-0123456789abcdef0123456789",
        }
        port = free_port()
        env["GUILDKIT_PUBLIC_URL"] = f"http://127.0.0.1:{port}"
        server, base_url = start_uvicorn(factory, env=env, factory=True, port=port)
        cookie, csrf = await _login(base_url, owner.id)
        yield Target(base_url, guild_ids, {"X-CSRF-Token": csrf}, {SESSION_COOKIE: cookie})
    finally:
        if server is not None:
            server.kill()
        sandbox.kill()
        redis.close()
