"""Fixtures for the dashboard: the real app on the real PostgreSQL and Redis, Discord played by
the in-process sandbox (guildkit.sandbox), and the one set of helpers every dashboard and abuse
test logs in with, through the stand-in's OAuth2 flow."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from guildkit.config import to_sqlalchemy_url
from guildkit.dashboard.app import create_app
from guildkit.dashboard.context import Dashboard, DashboardOptions
from guildkit.dashboard.discord_api import DiscordClient
from guildkit.dashboard.sessions import SESSION_COOKIE, Session, SessionStore
from guildkit.db.engine import create_engine
from guildkit.sandbox.client import SandboxClient
from guildkit.sandbox.runner import RunningSandbox, run_sandbox
from guildkit.sandbox.snowflakes import SANDBOX_START_MS, SnowflakeGenerator
from guildkit.settings.publisher import InvalidationPublisher
from guildkit.settings.redis_cache import RedisSettingsCache
from guildkit.settings.store import SettingsStore
from guildkit.settings.writer import SettingsWriter
from tests.conftest import BASE_REDIS_URL
from tests.support.fixtures import PythonChildFactory
from tests.support.processes import ChildProcess

SECRET = "test-secret-key-for-the-dashboard-0123456789"
ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5
BASE_URL = "http://dashboard.test"


@dataclass
class Scene:
    """Users and guilds in the sandbox, as the tests use them."""

    owner: int  # owns `guild` (bot present) and `botless`
    admin: int  # Administrator in `guild` via a role
    manager: int  # Manage Server in `guild` via a role
    member: int  # in `guild`, no rights
    outsider_admin: int  # owns `other` only
    guild: int
    botless: int
    other: int
    text_channel: int
    log_channel: int
    role: int


@dataclass
class Built:
    app: FastAPI
    dashboard: Dashboard
    engine: Any
    redis: Redis | None

    async def close(self) -> None:
        await self.dashboard.discord.aclose()
        if self.redis is not None:
            await self.redis.aclose()
        await self.engine.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build(
    database_url: str,
    sandbox: RunningSandbox,
    *,
    with_redis: bool = True,
    redis_url: str = BASE_REDIS_URL,
    options: DashboardOptions | None = None,
    pool_size: int = 10,
) -> Built:
    engine = create_engine(to_sqlalchemy_url(database_url), pool_size=pool_size)
    redis = (
        Redis.from_url(redis_url, socket_timeout=0.25, socket_connect_timeout=0.25)
        if with_redis
        else None
    )
    l2 = RedisSettingsCache(redis) if redis is not None else None
    store = SettingsStore(engine)
    dashboard = Dashboard(
        store=store,
        writer=SettingsWriter(store, InvalidationPublisher(l2)),
        discord=DiscordClient(
            sandbox.api_base,
            client_id=sandbox.client_id,
            client_secret=sandbox.client_secret,
            bot_token=sandbox.bot_token,
        ),
        sessions=SessionStore(engine, SECRET),
        options=options or DashboardOptions(),
        redis_cache=l2,
    )
    return Built(create_app(dashboard), dashboard, engine, redis)


def reseeded(running: RunningSandbox) -> RunningSandbox:
    """The sandbox's ids are the same on every run, but the test database lives for the whole
    session: start each sandbox's ids somewhere new so guilds never collide across tests."""
    offset = random.randint(0, 10**11)
    running.state.snowflakes = SnowflakeGenerator(start_ms=SANDBOX_START_MS + offset)
    running.state.guild_snowflakes = SnowflakeGenerator(
        start_ms=SANDBOX_START_MS + offset, worker_id=2
    )
    return running


@pytest.fixture
async def sandbox() -> AsyncIterator[RunningSandbox]:
    async with run_sandbox() as running:
        yield reseeded(running)


@pytest.fixture
async def sb(sandbox: RunningSandbox) -> AsyncIterator[SandboxClient]:
    async with SandboxClient(sandbox.base_url) as client:
        yield client


@pytest.fixture
async def scene(sb: SandboxClient) -> Scene:
    owner = await sb.create_user("owner", global_name="Olive Owner")
    admin = await sb.create_user("admin")
    manager = await sb.create_user("manager")
    member = await sb.create_user("member")
    outsider = await sb.create_user("outsider")
    guild = await sb.create_guild("Test <Guild>", owner.id)
    botless = await sb.create_guild("No Bot Here", owner.id, with_bot=False)
    other = await sb.create_guild("Other Guild", outsider.id)
    admin_role = await sb.create_role(guild.id, "Admins", permissions=ADMINISTRATOR)
    manager_role = await sb.create_role(guild.id, "Managers", permissions=MANAGE_GUILD)
    plain_role = await sb.create_role(guild.id, "Regulars")
    await sb.add_member(guild.id, admin.id, [admin_role.id])
    await sb.add_member(guild.id, manager.id, [manager_role.id])
    await sb.add_member(guild.id, member.id, [plain_role.id])
    await sb.add_member(other.id, admin.id)
    text = await sb.create_channel(guild.id, "welcome")
    log = await sb.create_channel(guild.id, "mod-log")
    return Scene(
        owner=owner.id,
        admin=admin.id,
        manager=manager.id,
        member=member.id,
        outsider_admin=outsider.id,
        guild=guild.id,
        botless=botless.id,
        other=other.id,
        text_channel=text.id,
        log_channel=log.id,
        role=plain_role.id,
    )


@pytest.fixture
async def built(database_url: str, sandbox: RunningSandbox) -> AsyncIterator[Built]:
    b = build(database_url, sandbox)
    try:
        yield b
    finally:
        await b.close()


def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE_URL, follow_redirects=False
    )


@pytest.fixture
async def client(built: Built) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(built.app) as c:
        yield c


@dataclass(frozen=True)
class Consent:
    """A login started at the dashboard and consented to at the stand-in; callback not taken."""

    start: httpx.Response  # the dashboard's redirect to Discord, which set the login cookie
    redirect: httpx.URL  # where Discord sends the browser back: /auth/callback?code&state
    code: str
    state: str

    @property
    def callback(self) -> str:
        return f"{self.redirect.path}?{self.redirect.query.decode()}"


async def authorize(client: httpx.AsyncClient, user_id: int, *, next_path: str = "/") -> Consent:
    """Start a login on the dashboard and consent as `user_id` on the stand-in's OAuth2 page."""
    start = await client.get("/auth/login", params={"next": next_path})
    assert start.status_code == 302, start.text
    async with httpx.AsyncClient(follow_redirects=False) as browser:
        consent = await browser.get(f"{start.headers['location']}&sandbox_user={user_id}")
    assert consent.status_code == 302, consent.text
    redirect = httpx.URL(consent.headers["location"])
    code, state = redirect.params.get("code"), redirect.params.get("state")
    assert code and state, consent.headers["location"]
    return Consent(start=start, redirect=redirect, code=code, state=state)


async def login(client: httpx.AsyncClient, user_id: int, *, next_path: str = "/") -> str:
    """Log in through the dashboard's real OAuth2 flow against the sandbox; the CSRF token."""
    consent = await authorize(client, user_id, next_path=next_path)
    done = await client.get(consent.callback)
    assert done.status_code == 303, done.text
    assert done.headers["location"] == next_path
    session = await client.get("/api/session")
    assert session.status_code == 200, session.text
    token: str = session.json()["csrf_token"]
    return token


async def stored_session(
    store: SessionStore,
    user_id: int,
    *,
    token_expires_in: int = 3600,
    now: float | None = None,
) -> tuple[Session, str]:
    """A session written straight into the store (no Discord login): it and its cookie."""
    return await store.create(
        user_id=str(user_id),
        username="made-up",
        display_name="made-up",
        avatar=None,
        access_token="not-a-discord-token",
        token_expires_in=token_expires_in,
        now=now,
    )


LoginFn = Callable[[httpx.AsyncClient, int], Any]


def session_cookie(client: httpx.AsyncClient) -> str:
    value = client.cookies.get(SESSION_COOKIE)
    assert value
    return value


async def dashboard_process(
    python_child: PythonChildFactory,
    sandbox: RunningSandbox,
    database_url: str,
    *,
    redis_url: str = "",
    secret_key: str = SECRET,
) -> tuple[ChildProcess, str]:
    """A real `guildkit dashboard` process (uvicorn) on a free port, healthy; it and its URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    child = python_child(
        "guildkit.cli.main",
        "dashboard",
        env={
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "DISCORD_TOKEN": sandbox.bot_token,
            "DISCORD_CLIENT_ID": sandbox.client_id,
            "DISCORD_CLIENT_SECRET": sandbox.client_secret,
            "DISCORD_API_BASE": sandbox.api_base,
            "GUILDKIT_SECRET_KEY": secret_key,
            "GUILDKIT_HOST": "127.0.0.1",
            "GUILDKIT_PORT": str(port),
            "GUILDKIT_PUBLIC_URL": base,
        },
    )
    await child.wait_for_line_async("dashboard on http://", timeout=30)
    async with httpx.AsyncClient(timeout=2.0) as probe:
        for _ in range(300):
            with contextlib.suppress(httpx.HTTPError):
                if (await probe.get(f"{base}/healthz")).status_code == 200:
                    return child, base
            assert child.alive(), "\n".join(child.output[-20:])
            await asyncio.sleep(0.1)
    raise TimeoutError(f"the dashboard on {base} never became healthy: {child.output[-20:]}")
