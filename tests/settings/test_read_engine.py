"""The store's read engine (no pre-ping, autocommit) survives a PostgreSQL restart."""

from __future__ import annotations

import asyncio

from guildkit.config import to_sqlalchemy_url
from guildkit.db.engine import create_engine, create_read_engine
from guildkit.settings.store import SettingsStore
from tests.support.postgres_server import PostgresServer


async def test_reads_after_a_restart_succeed_first_time(postgres_server: PostgresServer) -> None:
    url = to_sqlalchemy_url(postgres_server.url_for("guildkit"))
    engine = create_engine(url, pool_size=2)
    read_engine = create_read_engine(url, pool_size=3)
    store = SettingsStore(engine, read_engine=read_engine)
    try:
        await store.patch(42, {"prefix": "?"}, actor="t")
        # Fill the read pool with several connections, all of which the restart will kill.
        await asyncio.gather(*(store.get(42) for _ in range(3)))
        await asyncio.to_thread(postgres_server.restart)
        for _ in range(5):  # every read succeeds, the first one included
            value = await store.get(42)
            assert (value.version, value.settings.prefix) == (1, "?")
        assert (await store.get_many([42, 43]))[43].version == 0
        assert len(await store.history(42)) == 1
    finally:
        await read_engine.dispose()
        await engine.dispose()
