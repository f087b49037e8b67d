"""The naive design, written as the seed plan (seed-plan.md, "Phase 02") describes it literally.

- Every read is cache-aside on Redis: GET `settings:{guild_id}`; on a miss *or a Redis error*
  fetch from PostgreSQL and SET the value back (fire and forget). No in-process cache.
- A write commits in PostgreSQL, then invalidates: DEL the key and PUBLISH the bare guild id.
- A subscriber invalidates on each message (DEL again, as `settingsCache.invalidate(guildId)`).
- Startup (`onReady`) loops over the guilds and calls getOrFetch for each: a query per guild.
- redis-py clients with their default settings (no socket timeout, redis-py's default retries).

Its channel and key prefix differ from guildkit's so both designs can run side by side against
one Redis in the same run without reading each other's messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Iterable
from typing import Any

from redis.asyncio import Redis

from guildkit.settings.model import GuildSettings
from guildkit.settings.store import SettingsStore
from guildkit.settings.types import VersionedSettings

NAIVE_CHANNEL = "naive:config:settings"
NAIVE_PREFIX = "naive:settings:"


def naive_key(guild_id: int) -> str:
    return f"{NAIVE_PREFIX}{guild_id}"


def default_client(url: str) -> Redis:
    """redis-py as the seed would create it: `Redis.from_url(url)`, all defaults."""
    return Redis.from_url(url)


class NaiveSettingsCache:
    """`SettingsCache.getOrFetch` of the seed: Redis first, PostgreSQL on a miss or an error."""

    def __init__(self, redis: Redis, store: SettingsStore) -> None:
        self._redis = redis
        self._store = store
        self._background: set[asyncio.Task[Any]] = set()

    async def get(self, guild_id: int) -> VersionedSettings:
        try:
            raw = await self._redis.get(naive_key(guild_id))
        except Exception:
            raw = None  # "Cache miss or Redis error → fetch from DB"
        if raw is not None:
            doc = json.loads(raw)
            return VersionedSettings(
                guild_id, doc["version"], GuildSettings.model_validate(doc["settings"])
            )
        value = await self._store.get(guild_id)
        self._set_later(value)  # "this.set(guildId, data).catch(() => {})"
        return value

    def _set_later(self, value: VersionedSettings) -> None:
        payload = json.dumps({"version": value.version, "settings": value.settings.to_json()})

        async def set_it() -> None:
            with contextlib.suppress(Exception):
                await self._redis.set(naive_key(value.guild_id), payload)

        task = asyncio.get_running_loop().create_task(set_it())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def invalidate(self, guild_id: int) -> None:
        await self._redis.delete(naive_key(guild_id))

    async def startup(self, guild_ids: Iterable[int]) -> int:
        """`onReady`: one getOrFetch per guild, one after the other."""
        count = 0
        for gid in guild_ids:
            await self.get(gid)
            count += 1
        return count

    async def aclose(self) -> None:
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)


class NaivePublisher:
    """After the commit: DEL the key, then PUBLISH the bare guild id (awaited, default client)."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def invalidate(self, guild_id: int) -> None:
        await self._redis.delete(naive_key(guild_id))
        await self._redis.publish(NAIVE_CHANNEL, str(guild_id))


async def naive_subscriber(
    redis: Redis, cache: NaiveSettingsCache, on_invalidated: Callable[[int], None]
) -> None:
    """`subscriber.on('message', guildId => settingsCache.invalidate(guildId))`, forever."""
    pubsub = redis.pubsub()
    await pubsub.subscribe(NAIVE_CHANNEL)
    async for message in pubsub.listen():
        if message.get("type") != "message":
            continue
        try:
            gid = int(message["data"])
        except (TypeError, ValueError):
            continue
        with contextlib.suppress(Exception):
            await cache.invalidate(gid)
        on_invalidated(gid)
