"""Shared fixtures: a throwaway PostgreSQL database per test session, built by the real migrations.

The base server comes from GUILDKIT_TEST_PG_URL (default: the machine's shared PostgreSQL); the
session's own database is created there and dropped at the end, so concurrent runs never meet.
"""

from __future__ import annotations

import asyncio
import os
import random
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from guildkit.config import to_asyncpg_dsn, to_sqlalchemy_url
from guildkit.db.engine import create_engine
from guildkit.db.migrate import upgrade_to_head
from guildkit.settings.store import SettingsStore

pytest_plugins = ["tests.support.fixtures"]

BASE_PG_URL = os.environ.get(
    "GUILDKIT_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
BASE_REDIS_URL = os.environ.get("GUILDKIT_TEST_REDIS_URL", "redis://127.0.0.1:6379")


def _with_database(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


async def _create_database(name: str) -> None:
    conn = await asyncpg.connect(to_asyncpg_dsn(BASE_PG_URL))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    engine = create_engine(to_sqlalchemy_url(_with_database(BASE_PG_URL, name)))
    try:
        await upgrade_to_head(engine)
    finally:
        await engine.dispose()


async def _drop_database(name: str) -> None:
    conn = await asyncpg.connect(to_asyncpg_dsn(BASE_PG_URL))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A libpq URL of a migrated database that lives for this test session."""
    name = f"guildkit_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_create_database(name))
    try:
        yield _with_database(BASE_PG_URL, name)
    finally:
        asyncio.run(_drop_database(name))


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[object]:
    eng = create_engine(to_sqlalchemy_url(database_url), pool_size=5)
    try:
        yield eng
    finally:
        await eng.dispose()


@pytest.fixture
def store(engine: object) -> SettingsStore:
    return SettingsStore(engine)  # type: ignore[arg-type]


@pytest.fixture
def guild_id() -> int:
    """A fresh snowflake per test, so tests sharing the session database never collide."""
    return random.randint(10**17, 10**18)
