"""Fixtures for the bot's end-to-end tests: a sandbox with the demo guild, a private
PostgreSQL (the sandbox's ids are the same on every run, so a shared database would leak
settings between tests), and the dashboard's write path."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from guildkit.config import to_sqlalchemy_url
from guildkit.db.engine import create_engine
from guildkit.sandbox import RunningSandbox, run_sandbox
from guildkit.sandbox.client import SandboxClient
from guildkit.settings.runtime import build_writing_side
from tests.bot.harness import Scene
from tests.support.postgres_server import PostgresServer


@pytest.fixture
async def sandbox() -> AsyncIterator[RunningSandbox]:
    async with run_sandbox(port=0, seed_demo=True) as running:
        yield running


@pytest.fixture
async def control(sandbox: RunningSandbox) -> AsyncIterator[SandboxClient]:
    async with SandboxClient(sandbox.base_url) as client:
        yield client


@pytest.fixture
def bot_db(postgres_server: PostgresServer) -> str:
    return postgres_server.url_for("guildkit")


@pytest.fixture
async def bot_engine(bot_db: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(to_sqlalchemy_url(bot_db), pool_size=2)
    try:
        yield engine
    finally:
        await engine.dispose()


def make_scene(
    sandbox: RunningSandbox,
    control: SandboxClient,
    engine: AsyncEngine,
    redis_url: str | None,
) -> Scene:
    demo = sandbox.demo
    assert demo is not None
    return Scene(
        sandbox=sandbox,
        control=control,
        engine=engine,
        writing=build_writing_side(engine, redis_url=redis_url),
        guild_id=demo.guild_id,
        general=demo.general_channel_id,
        welcome=demo.welcome_channel_id,
        mod_log=demo.mod_log_channel_id,
        member=demo.member_user_id,
        member_role=demo.member_role_id,
        moderator_role=demo.moderator_role_id,
    )


@pytest.fixture
async def scene(
    sandbox: RunningSandbox, control: SandboxClient, bot_engine: AsyncEngine
) -> AsyncIterator[Scene]:
    """Without Redis; tests with Redis build their own scene with `make_scene`."""
    built = make_scene(sandbox, control, bot_engine, None)
    try:
        yield built
    finally:
        await built.writing.close()
