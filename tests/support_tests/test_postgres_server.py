"""The private PostgreSQL's faults are real, seen through asyncpg (the driver guildkit uses)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from guildkit.db.migrate import head_revision
from tests.support.fixtures import GUILDKIT_DB
from tests.support.postgres_server import PostgresServer
from tests.support.processes import pid_alive
from tests.support.tcp_proxy import TcpProxy

# What a dropped session looks like to asyncpg depends on timing: the server's goodbye
# message, or a reset socket.
LOST_CONNECTION = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.AdminShutdownError,
    ConnectionError,
    OSError,
)


async def test_guildkit_database_is_migrated_to_head(postgres_server: PostgresServer) -> None:
    conn = await asyncpg.connect(postgres_server.url_for(GUILDKIT_DB))
    try:
        assert await conn.fetchval("SELECT version_num FROM alembic_version") == head_revision()
    finally:
        await conn.close()


async def test_restart_drops_existing_connections(postgres_server: PostgresServer) -> None:
    url = postgres_server.url_for(GUILDKIT_DB)
    conn = await asyncpg.connect(url)
    await conn.execute("CREATE TABLE t (v int); INSERT INTO t VALUES (1)")
    postmaster = postgres_server.pid
    postgres_server.restart()
    assert postgres_server.pid != postmaster
    with pytest.raises(LOST_CONNECTION):
        await conn.fetchval("SELECT 1")
    conn.terminate()
    fresh = await asyncpg.connect(url)
    try:
        assert await fresh.fetchval("SELECT v FROM t") == 1
    finally:
        await fresh.close()


async def test_kill_is_a_crash_that_recovers_committed_data(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.url_for(GUILDKIT_DB)
    conn = await asyncpg.connect(url)
    await conn.execute("CREATE TABLE t (v int); INSERT INTO t VALUES (42)")
    postmaster = postgres_server.pid
    assert postmaster is not None
    postgres_server.kill()
    assert not pid_alive(postmaster)
    with pytest.raises(OSError):
        await asyncpg.connect(url, timeout=1)
    conn.terminate()
    postgres_server.start()
    assert "not properly shut down" in postgres_server.log_tail(50)
    fresh = await asyncpg.connect(url)
    try:
        assert await fresh.fetchval("SELECT v FROM t") == 42
    finally:
        await fresh.close()


async def test_pause_hangs_queries_and_new_connections(postgres_server: PostgresServer) -> None:
    url = postgres_server.url_for(GUILDKIT_DB)
    conn = await asyncpg.connect(url)
    try:
        postgres_server.pause()
        try:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(conn.fetchval("SELECT 1"), 0.3)
            with pytest.raises(TimeoutError):
                await asyncpg.connect(url, timeout=0.3)
        finally:
            postgres_server.resume()
        # wait_for cancelled the query mid-flight, which leaves asyncpg's protocol
        # unusable; a real caller would discard that connection, so do we.
        fresh = await asyncpg.connect(url)
        assert await fresh.fetchval("SELECT 2") == 2
        await fresh.close()
    finally:
        conn.terminate()


async def test_stop_refuses_and_start_serves_again(postgres_server: PostgresServer) -> None:
    url = postgres_server.url_for(GUILDKIT_DB)
    postgres_server.stop()
    with pytest.raises(OSError):
        await asyncpg.connect(url, timeout=1)
    postgres_server.start()
    conn = await asyncpg.connect(url)
    assert await conn.fetchval("SELECT 1") == 1
    await conn.close()


async def test_create_database(postgres_server: PostgresServer) -> None:
    url = postgres_server.create_database("other")
    conn = await asyncpg.connect(url)
    assert await conn.fetchval("SELECT current_database()") == "other"
    await conn.close()


async def test_cut_listen_connection_through_proxy(postgres_server: PostgresServer) -> None:
    proxy = TcpProxy(postgres_server.host, postgres_server.port).start_in_thread()
    try:
        url = proxy.url("postgresql", f"/{GUILDKIT_DB}", user="postgres")
        listener = await asyncpg.connect(url)
        lost = asyncio.Event()
        received: list[str] = []
        listener.add_termination_listener(lambda _conn: lost.set())
        await listener.add_listener("config_settings", lambda *args: received.append(args[3]))
        direct = await asyncpg.connect(postgres_server.url_for(GUILDKIT_DB))
        await direct.execute("SELECT pg_notify('config_settings', 'one')")
        for _ in range(100):
            if received:
                break
            await asyncio.sleep(0.01)
        assert received == ["one"]
        proxy.cut()
        # asyncpg notices only on its next read; an idle LISTEN connection learns of the RST
        # because the event loop sees the socket become readable.
        await asyncio.wait_for(lost.wait(), 2)
        assert listener.is_closed()
        await direct.close()
    finally:
        proxy.close()
