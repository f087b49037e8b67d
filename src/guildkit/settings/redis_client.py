"""Redis clients configured for a cache that must never make anyone wait long (DESIGN §2.5)."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff


def cache_client(url: str, *, timeout: float = 0.15) -> Redis:
    """For cache reads and writes: short timeouts and no retries (the breaker decides)."""
    return Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
        max_connections=64,
    )


def pubsub_client(url: str, *, connect_timeout: float = 0.5) -> Redis:
    """For the Pub/Sub subscription: reads block by design; the listener's watchdog decides
    when the connection is dead, so no socket read timeout here."""
    return Redis.from_url(
        url,
        socket_timeout=None,
        socket_connect_timeout=connect_timeout,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
    )
