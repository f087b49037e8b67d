"""The private Redis's faults are real: observed through redis-py, not taken on trust."""

from __future__ import annotations

import socket
import time

import pytest
import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff

from tests.support.processes import pid_alive
from tests.support.redis_server import RedisServer


def test_paused_server_times_out_then_answers_after_resume(redis_server: RedisServer) -> None:
    client = redis_server.client(socket_timeout=0.2)
    client.set("k", "v")
    redis_server.pause()
    started = time.monotonic()
    with pytest.raises(redis.TimeoutError):
        client.get("k")
    assert time.monotonic() - started < 1.0
    # A hung server still completes TCP handshakes: the kernel answers for it.
    with socket.create_connection((redis_server.host, redis_server.port), timeout=0.5):
        pass
    redis_server.resume()
    assert client.get("k") == "v"


async def test_paused_server_times_out_an_asyncio_client(redis_server: RedisServer) -> None:
    client = aioredis.Redis.from_url(
        redis_server.url, socket_timeout=0.2, retry=AsyncRetry(NoBackoff(), 0)
    )
    try:
        assert await client.ping()
        redis_server.pause()
        with pytest.raises(redis.TimeoutError):
            await client.ping()
        redis_server.resume()
        assert await client.ping()
    finally:
        await client.aclose()


def test_killed_server_refuses_connections(redis_server: RedisServer) -> None:
    client = redis_server.client()
    client.set("k", "v")
    pid = redis_server.pid
    assert pid is not None
    redis_server.kill()
    assert not pid_alive(pid)
    with pytest.raises(redis.ConnectionError, match="refused"):
        client.get("k")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((redis_server.host, redis_server.port), timeout=0.5)


def test_restart_keeps_the_port_and_comes_back_empty(redis_server: RedisServer) -> None:
    client = redis_server.client()
    client.set("k", "v")
    port = redis_server.port
    redis_server.restart()
    assert redis_server.port == port
    assert client.get("k") is None


def test_restart_keep_data(redis_server: RedisServer) -> None:
    client = redis_server.client()
    client.set("k", "v")
    redis_server.restart(keep_data=True)
    assert client.get("k") == "v"


def test_restart_from_snapshot_serves_the_old_value(redis_server: RedisServer) -> None:
    client = redis_server.client()
    client.set("guildkit:settings:1", '{"version": 1}')
    snapshot = redis_server.snapshot()
    client.set("guildkit:settings:1", '{"version": 2}')
    client.set("written-after-snapshot", "x")
    redis_server.restart_from_snapshot(snapshot)
    assert client.get("guildkit:settings:1") == '{"version": 1}'
    assert client.get("written-after-snapshot") is None
    # The stale RDB is not picked up by later plain restarts.
    redis_server.restart()
    assert client.get("guildkit:settings:1") is None


def test_flushall(redis_server: RedisServer) -> None:
    client = redis_server.client()
    client.set("k", "v")
    redis_server.flushall()
    assert client.dbsize() == 0


def test_close_kills_a_paused_server() -> None:
    server = RedisServer()
    pid = server.pid
    assert pid is not None
    server.pause()
    server.close()
    assert not pid_alive(pid)
    assert not server.directory.exists()
