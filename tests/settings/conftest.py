from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from guildkit.settings.redis_cache import RedisSettingsCache
from guildkit.settings.redis_client import cache_client
from tests.conftest import BASE_REDIS_URL


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    """The shared Redis, on a random logical database so concurrent runs rarely meet; tests
    only touch keys of their own random guild ids, never flush it."""
    client = cache_client(f"{BASE_REDIS_URL}/{random.randint(1, 15)}", timeout=1.0)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def l2(redis: Redis) -> RedisSettingsCache:
    return RedisSettingsCache(redis, timeout=1.0)
