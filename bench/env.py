"""The benchmark's environment: its own PostgreSQL database and a private redis-server.

Non-fault runs use a database `guildkit_bench_<random>` created on the PostgreSQL server named by
GUILDKIT_BENCH_PG_URL (default: the machine's shared server) and dropped at the end. Redis is
always a private `redis-server` (tests.support.redis_server), so every flush, kill and SIGSTOP
hits only instances this run started; the shared Redis on :6379 is never touched.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.support.redis_server import RedisServer

from guildkit.config import to_asyncpg_dsn, to_sqlalchemy_url
from guildkit.db.engine import create_engine
from guildkit.db.migrate import upgrade_to_head
from guildkit.settings.model import GuildSettings

BASE_PG_URL = os.environ.get(
    "GUILDKIT_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
GUILD_BASE = 300_000_000_000_000_000


def guild_id(index: int) -> int:
    return GUILD_BASE + index


def settings_document(index: int) -> dict[str, Any]:
    """A distinct, valid settings document per guild (the worst case for parse caches)."""
    doc = GuildSettings().to_json()
    doc["prefix"] = "!" if index % 2 else "?"
    doc["welcome"]["message"] = f"Welcome {{user}} to {{server}}! (guild #{index})"
    doc["moderation"]["blocked_words"] = [f"word{index % 97}", "spam"]
    doc["auto_roles"] = [str(GUILD_BASE + 10_000_000 + index)]
    return doc


@dataclass
class BenchDatabase:
    url: str  # libpq URL
    name: str

    @property
    def dsn(self) -> str:
        return to_asyncpg_dsn(self.url)

    @property
    def sqlalchemy_url(self) -> str:
        return to_sqlalchemy_url(self.url)

    def engine(self, pool_size: int = 10) -> AsyncEngine:
        return create_engine(self.sqlalchemy_url, pool_size=pool_size)


def _with_database(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


@contextlib.asynccontextmanager
async def bench_database() -> AsyncIterator[BenchDatabase]:
    name = f"guildkit_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(to_asyncpg_dsn(BASE_PG_URL))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    db = BenchDatabase(_with_database(BASE_PG_URL, name), name)
    try:
        engine = db.engine(pool_size=1)
        try:
            await upgrade_to_head(engine)
        finally:
            await engine.dispose()
        yield db
    finally:
        admin = await asyncpg.connect(to_asyncpg_dsn(BASE_PG_URL))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def populate(db: BenchDatabase, count: int, *, start: int = 0) -> list[int]:
    """Insert `count` guild rows (distinct documents, version 1) with COPY; returns their ids."""
    conn = await asyncpg.connect(db.dsn)
    try:
        seq_base = int(await conn.fetchval("SELECT nextval('settings_change_seq')"))
        rows = [
            (
                guild_id(start + i),
                json.dumps(settings_document(start + i)),
                1,
                seq_base + i + 1,
                "bench",
            )
            for i in range(count)
        ]
        await conn.copy_records_to_table(
            "guild_settings",
            records=rows,
            columns=["guild_id", "settings", "version", "change_seq", "updated_by"],
        )
        await conn.execute("SELECT setval('settings_change_seq', $1)", seq_base + count + 1)
        await conn.execute("ANALYZE guild_settings")
    finally:
        await conn.close()
    return [guild_id(start + i) for i in range(count)]


def private_redis() -> RedisServer:
    return RedisServer()


def shuffled(ids: list[int], seed: int = 1) -> list[int]:
    out = list(ids)
    random.Random(seed).shuffle(out)
    return out
