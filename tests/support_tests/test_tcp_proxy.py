"""The proxy's connection faults are real, seen through redis-py in front of a private Redis."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.client import PubSub
from redis.retry import Retry

from tests.support.fixtures import ProxyFactory
from tests.support.redis_server import RedisServer
from tests.support.tcp_proxy import TcpProxy


def _client(proxy: TcpProxy, timeout: float = 0.3) -> redis.Redis:
    return redis.Redis(
        host=proxy.host,
        port=proxy.port,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        decode_responses=True,
        retry=Retry(NoBackoff(), 0),
    )


def _subscriber(proxy: TcpProxy) -> PubSub:
    client = _client(proxy, timeout=2)
    pubsub: PubSub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
    return pubsub


def _server_client_count(redis_server: RedisServer) -> int:
    clients = redis_server.client().client_list()
    return len(clients) - 1  # minus the asking connection


def test_forwarding_counts_connections_and_bytes(
    redis_server: RedisServer, tcp_proxy: ProxyFactory
) -> None:
    proxy = tcp_proxy(redis_server.host, redis_server.port)
    client = _client(proxy)
    client.set("k", "v")
    assert client.get("k") == "v"
    assert proxy.active_connections == 1
    assert proxy.total_connections == 1
    assert proxy.bytes_to_target > 0 and proxy.bytes_from_target > 0
    client.close()


def test_blackhole_times_out_ping_while_tcp_stays_open(
    redis_server: RedisServer, tcp_proxy: ProxyFactory
) -> None:
    proxy = tcp_proxy(redis_server.host, redis_server.port)
    raw = socket.create_connection(proxy.address, timeout=1)
    raw.sendall(b"PING\r\n")
    assert raw.recv(100) == b"+PONG\r\n"
    client = _client(proxy)
    assert client.ping()
    proxy.blackhole()
    started = time.monotonic()
    with pytest.raises(redis.TimeoutError):
        client.ping()
    assert time.monotonic() - started < 1.0
    # The raw connection is neither answered nor closed: recv times out instead of
    # returning b"" (FIN) or raising ConnectionResetError (RST).
    raw.settimeout(0.3)
    raw.sendall(b"PING\r\n")
    with pytest.raises(TimeoutError):
        raw.recv(100)
    # Redis itself still sees the connection as alive.
    assert _server_client_count(redis_server) >= 1
    # New connections are accepted but dead too.
    with pytest.raises((redis.TimeoutError, redis.ConnectionError)):
        _client(proxy).ping()
    raw.close()


def test_blackholed_subscription_stays_silent_after_restore(
    redis_server: RedisServer, tcp_proxy: ProxyFactory
) -> None:
    proxy = tcp_proxy(redis_server.host, redis_server.port)
    publisher = redis_server.client()
    pubsub = _subscriber(proxy)
    pubsub.subscribe("config:settings")
    assert pubsub.get_message(timeout=1) is None  # consumes the subscribe confirmation
    publisher.publish("config:settings", "v1")
    message = pubsub.get_message(timeout=1)
    assert message is not None and message["data"] == "v1"

    proxy.blackhole()
    proxy.restore()
    # Redis still delivers to the subscription, so a publish counts a receiver...
    assert publisher.publish("config:settings", "v2") == 1
    # ...but nothing arrives and nothing errors: the "silently dropped subscription".
    assert pubsub.get_message(timeout=0.5) is None
    # A new subscription after restore works.
    fresh = _subscriber(proxy)
    fresh.subscribe("config:settings")
    fresh.get_message(timeout=1)
    publisher.publish("config:settings", "v3")
    message = fresh.get_message(timeout=1)
    assert message is not None and message["data"] == "v3"
    pubsub.close()
    fresh.close()


def test_cut_raises_connection_error_on_a_reading_client(
    redis_server: RedisServer, tcp_proxy: ProxyFactory
) -> None:
    proxy = tcp_proxy(redis_server.host, redis_server.port)
    pubsub = _subscriber(proxy)
    pubsub.subscribe("config:settings")
    pubsub.get_message(timeout=1)
    proxy.cut()
    with pytest.raises(redis.ConnectionError):
        pubsub.get_message(timeout=1)
    pubsub.close()
    # Forwarding continues for new connections.
    assert _client(proxy).ping()


def test_sync_client_silently_replaces_an_idle_cut_connection(
    redis_server: RedisServer, tcp_proxy: ProxyFactory
) -> None:
    # redis-py's sync pool checks a connection for unexpected readable data (here the RST)
    # before handing it out and reconnects, so a cut is invisible to an idle sync client.
    proxy = tcp_proxy(redis_server.host, redis_server.port)
    client = _client(proxy)
    assert client.ping()
    proxy.cut()
    assert client.ping()
    assert proxy.total_connections == 2


def test_cut_interrupts_a_blocking_command(
    redis_server: RedisServer, tcp_proxy: ProxyFactory
) -> None:
    proxy = tcp_proxy(redis_server.host, redis_server.port)
    client = _client(proxy, timeout=5)
    client.ping()
    errors: list[BaseException] = []

    def block() -> None:
        try:
            client.blpop(["never"], timeout=3)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=block)
    thread.start()
    time.sleep(0.1)
    started = time.monotonic()
    proxy.cut()
    thread.join(5)
    assert time.monotonic() - started < 1.0
    assert len(errors) == 1 and isinstance(errors[0], redis.ConnectionError)


def test_cut_with_refuse_until_restore(redis_server: RedisServer, tcp_proxy: ProxyFactory) -> None:
    proxy = tcp_proxy(redis_server.host, redis_server.port)
    client = _client(proxy)
    assert client.ping()
    proxy.cut(refuse=True)
    with pytest.raises(redis.ConnectionError, match="refused"):
        client.ping()
    proxy.restore()
    assert client.ping()


def test_target_down_looks_like_a_dead_connection(
    redis_server: RedisServer, tcp_proxy: ProxyFactory
) -> None:
    proxy = tcp_proxy(redis_server.host, redis_server.port)
    redis_server.kill()
    with pytest.raises(redis.ConnectionError):
        _client(proxy).ping()
    redis_server.start()
    assert _client(proxy).ping()


async def test_proxy_on_the_test_loop_with_an_asyncio_client(redis_server: RedisServer) -> None:
    async with TcpProxy(redis_server.host, redis_server.port) as proxy:
        client = aioredis.Redis(
            host=proxy.host,
            port=proxy.port,
            socket_timeout=0.3,
            retry=AsyncRetry(NoBackoff(), 0),
        )
        try:
            assert await client.ping()
            proxy.blackhole()
            with pytest.raises(redis.TimeoutError):
                await client.ping()
            proxy.restore()
            assert await client.ping()
            proxy.cut()
            # Unlike the sync client, redis.asyncio does not check an idle pooled connection
            # before use: the first command after a cut fails, the next one reconnects.
            with pytest.raises(redis.ConnectionError):
                await client.ping()
            assert await client.ping()
        finally:
            await client.aclose()
