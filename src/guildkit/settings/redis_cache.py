"""L2: the Redis tier. Untrusted, bounded in time, and written only by compare-by-version.

Every value carries the version it was read at. Fills never replace a newer version, and
invalidation writes a tombstone carrying the new version instead of deleting the key: a DEL would
let a slow reader write an older value back (DESIGN §2.3).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, TypeVar

from redis.asyncio import Redis

from guildkit.settings.breaker import BreakerState, CircuitBreaker
from guildkit.settings.model import GuildSettings
from guildkit.settings.types import SIGNAL_CHANNEL_REDIS, ChangeSignal

log = logging.getLogger(__name__)
T = TypeVar("T")

KEY_PREFIX: Final = "guildkit:settings:"
TTL_SECONDS: Final = 600
TTL_JITTER_SECONDS: Final = 60

# ARGV: version, payload, ttl_ms, is_tombstone ("1"/"0"). Returns 1 if written.
# A value replaces: nothing, garbage, anything older, or a tombstone of its own version.
# A tombstone replaces: nothing, garbage, or anything older.
_CAS_SCRIPT: Final = """
local current = redis.call('GET', KEYS[1])
local incoming = tonumber(ARGV[1])
if current then
  local v = tonumber(string.match(current, '^{"version":(%d+)'))
  if v then
    if v > incoming then return 0 end
    if v == incoming then
      local is_tomb = string.find(current, '"tombstone":true', 1, true) ~= nil
      if ARGV[4] == '1' or not is_tomb then return 0 end
    end
  end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
"""


class RedisUnavailable(Exception):
    """Redis failed, timed out, or the breaker is open; the caller falls back to PostgreSQL."""


@dataclass(frozen=True, slots=True)
class CachedValue:
    version: int
    settings: GuildSettings


@dataclass(frozen=True, slots=True)
class CachedTombstone:
    version: int


CachedEntry = CachedValue | CachedTombstone


def key_for(guild_id: int) -> str:
    return f"{KEY_PREFIX}{guild_id}"


def encode_value(version: int, settings_json: str) -> str:
    return f'{{"version":{version},"settings":{settings_json}}}'


def encode_tombstone(version: int) -> str:
    return f'{{"version":{version},"tombstone":true}}'


def decode(raw: bytes | str) -> CachedEntry | None:
    """Parse what Redis holds; anything malformed is treated as a miss, never trusted."""
    try:
        doc = json.loads(raw)
        version = doc["version"]
        if not isinstance(version, int) or isinstance(version, bool) or version < 0:
            return None
        if doc.get("tombstone") is True:
            return CachedTombstone(version)
        return CachedValue(version, GuildSettings.model_validate(doc["settings"]))
    except (ValueError, KeyError, TypeError):
        return None


class RedisSettingsCache:
    """The L2 operations, each bounded by `timeout` and guarded by one circuit breaker."""

    def __init__(
        self,
        redis: Redis,
        *,
        breaker: CircuitBreaker | None = None,
        timeout: float = 0.15,
    ) -> None:
        self._redis = redis
        self._breaker = breaker or CircuitBreaker()
        self._timeout = timeout
        self._probes: set[asyncio.Task[None]] = set()

    @property
    def breaker(self) -> CircuitBreaker:
        return self._breaker

    @property
    def redis(self) -> Redis:
        return self._redis

    @property
    def available(self) -> bool:
        return self._breaker.state is not BreakerState.OPEN

    async def get(self, guild_id: int) -> CachedEntry | None:
        raw = await self._guarded(lambda: self._redis.get(key_for(guild_id)))
        return None if raw is None else decode(raw)

    async def fill(self, guild_id: int, version: int, settings: GuildSettings) -> bool:
        """Install a value read from PostgreSQL unless Redis already has something newer."""
        payload = encode_value(version, json.dumps(settings.to_json(), separators=(",", ":")))
        result = await self._guarded(
            lambda: self._redis.eval(
                _CAS_SCRIPT, 1, key_for(guild_id), version, payload, _ttl_ms(), "0"
            )
        )
        return bool(result)

    async def fill_many(self, values: list[tuple[int, int, GuildSettings]]) -> None:
        """Install many values in one round trip (bulk warm-up)."""
        if not values:
            return
        pipe = self._redis.pipeline(transaction=False)
        for guild_id, version, settings in values:
            payload = encode_value(version, json.dumps(settings.to_json(), separators=(",", ":")))
            pipe.eval(_CAS_SCRIPT, 1, key_for(guild_id), version, payload, _ttl_ms(), "0")
        await self._guarded(pipe.execute, budget=max(self._timeout, 0.001 * len(values)))

    async def tombstone_and_publish(self, signal: ChangeSignal) -> None:
        """The after-commit invalidation: tombstone first, then the fast signal, one round trip."""
        pipe = self._redis.pipeline(transaction=False)
        # EVAL rather than EVALSHA: one round trip even after Redis restarted and lost its scripts.
        pipe.eval(
            _CAS_SCRIPT,
            1,
            key_for(signal.guild_id),
            signal.version,
            encode_tombstone(signal.version),
            _ttl_ms(),
            "1",
        )
        pipe.publish(SIGNAL_CHANNEL_REDIS, signal.to_json())
        await self._guarded(pipe.execute)

    async def _probe(self) -> None:
        healthy = False
        try:
            async with asyncio.timeout(self._timeout):
                await self._redis.ping()
            healthy = True
        except Exception:  # whatever it raises (see _guarded), the probe failed
            pass
        finally:
            # Also when cancelled: the breaker must never stay waiting for a lost probe.
            if healthy:
                self._breaker.record_success()
            else:
                self._breaker.record_failure()

    async def ping(self) -> bool:
        return bool(await self._guarded(self._redis.ping))

    async def _guarded(self, make: Callable[[], Awaitable[T]], budget: float | None = None) -> T:
        # The factory is only called once the breaker allows it, so an open breaker costs nothing.
        if not self._breaker.allow():
            raise RedisUnavailable("Redis circuit breaker is open")
        if self._breaker.state is BreakerState.HALF_OPEN:
            # This call won the probe slot. Probe with a PING in the background instead of
            # making the caller wait on a Redis that may still be hung.
            probe = asyncio.get_running_loop().create_task(self._probe())
            self._probes.add(probe)
            probe.add_done_callback(self._probes.discard)
            raise RedisUnavailable("Redis circuit breaker is probing")
        try:
            async with asyncio.timeout(budget or self._timeout):
                result = await make()
        except Exception as exc:
            # Not only RedisError, OSError and TimeoutError: a connection Redis closed between
            # connect and HELLO makes redis-py write to a closed transport, and uvloop raises
            # RuntimeError for that (the chaos campaign turned it into a PATCH answered 500
            # after its commit). Whatever a cache call raises, the cache is unavailable.
            self._breaker.record_failure()
            raise RedisUnavailable(f"Redis call failed: {exc!r}") from exc
        except asyncio.CancelledError:
            self._breaker.record_failure()
            raise
        self._breaker.record_success()
        return result


def _ttl_ms() -> int:
    return (TTL_SECONDS + random.randint(-TTL_JITTER_SECONDS, TTL_JITTER_SECONDS)) * 1000
