"""Reads while Redis is down (killed) or hung (SIGSTOP), next to healthy DB-miss reads.

Every read here misses L1 with a known floor, so the reader consults L2 first: exactly the reads
a dead Redis could slow down. 10 concurrent readers for a few seconds per case; each read's
latency and start time are kept, so reads that waited on Redis (timeouts, half-open probes) show.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from tests.support.redis_server import RedisServer

from bench.env import BenchDatabase
from bench.stats import summarize
from guildkit.settings.breaker import BreakerState
from guildkit.settings.reader import SettingsReader
from guildkit.settings.redis_cache import RedisSettingsCache
from guildkit.settings.redis_client import cache_client
from guildkit.settings.store import SettingsStore

WAITED_MS = 50.0  # a read this slow with the breaker open has waited on something


@dataclass
class RedisDownConfig:
    seconds: float
    concurrency: int


class TimedRedis:
    """Wraps the cache's Redis client to record every GET a read makes: (start s, ms)."""

    def __init__(self, inner: Redis, ref: list[float], calls: list[tuple[float, float]]) -> None:
        self._inner = inner
        self._ref = ref
        self._calls = calls

    async def get(self, key: str) -> Any:
        t0 = time.perf_counter()
        try:
            return await self._inner.get(key)
        finally:
            self._calls.append((t0 - self._ref[0], (time.perf_counter() - t0) * 1000))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class ExpiringClock:
    """time.monotonic() plus an offset bumped before each read, so every read misses L1."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset


async def _drive(
    reader: SettingsReader,
    clock: ExpiringClock | None,
    ids: list[int],
    cfg: RedisDownConfig,
    forget: bool,
) -> list[tuple[float, float, str]]:
    samples: list[tuple[float, float, str]] = []  # (start offset s, latency ms, tier)
    stop = time.perf_counter() + cfg.seconds
    t_start = time.perf_counter()
    per = max(1, len(ids) // cfg.concurrency)

    async def worker(w: int) -> None:
        mine = ids[w * per : (w + 1) * per]
        i = 0
        while time.perf_counter() < stop:
            gid = mine[i % len(mine)]
            i += 1
            if forget:
                reader.forget(gid)
            if clock is not None:
                clock.offset += 1000.0
            t0 = time.perf_counter()
            read = await reader.get(gid)
            t1 = time.perf_counter()
            samples.append((t0 - t_start, (t1 - t0) * 1000, read.tier.value))

    await asyncio.gather(*(worker(w) for w in range(cfg.concurrency)))
    return samples


def _describe(samples: list[tuple[float, float, str]], seconds: float) -> dict[str, Any]:
    lat = [ms for _, ms, _ in samples]
    tiers: dict[str, int] = {}
    for _, _, tier in samples:
        tiers[tier] = tiers.get(tier, 0) + 1
    slow = [(round(t, 3), round(ms, 1)) for t, ms, _ in samples if ms >= WAITED_MS]
    return {
        "ms": summarize(lat),
        "reads_per_s": len(samples) / seconds,
        "tiers": tiers,
        "reads_over_50ms": len(slow),
        "slow_reads": slow[:50],
    }


async def run_redis_down(db: BenchDatabase, ids: list[int], cfg: RedisDownConfig) -> dict[str, Any]:
    engine = db.engine(pool_size=10)
    store = SettingsStore(engine)
    out: dict[str, Any] = {}
    pool_ids = ids[:2000]
    try:
        # Healthy DB-miss reads: the reference (no Redis on this path at all).
        reader = SettingsReader(store, None)
        await _drive(reader, None, pool_ids, RedisDownConfig(0.3, cfg.concurrency), True)
        out["healthy_db_miss"] = _describe(
            await _drive(reader, None, pool_ids, cfg, True), cfg.seconds
        )
        for fault in ("killed", "hung"):
            redis = RedisServer()
            transitions: list[tuple[float, str]] = []
            ref = [time.perf_counter()]
            calls: list[tuple[float, float]] = []
            l2 = RedisSettingsCache(TimedRedis(cache_client(redis.url), ref, calls))  # type: ignore[arg-type]

            def observe(
                state: BreakerState,
                transitions: list[tuple[float, str]] = transitions,
                ref: list[float] = ref,
            ) -> None:
                transitions.append((round(time.perf_counter() - ref[0], 3), state.value))

            l2.breaker._on_change = observe  # observe only
            clock = ExpiringClock()
            reader = SettingsReader(store, l2, clock=clock)
            try:
                await reader.warm(pool_ids)
                # Healthy L2 reads first (for reference), then the fault.
                healthy = await _drive(
                    reader, clock, pool_ids, RedisDownConfig(0.5, cfg.concurrency), False
                )
                if fault == "killed":
                    redis.kill()
                else:
                    redis.pause()
                ref[0] = time.perf_counter()
                transitions.clear()
                calls.clear()
                samples = await _drive(reader, clock, pool_ids, cfg, False)
                first_open = next((t for t, s in transitions if s == BreakerState.OPEN.value), None)
                after_open = [s for s in samples if first_open is not None and s[0] >= first_open]
                desc = _describe(samples, cfg.seconds)
                desc["healthy_l2_ms"] = summarize([ms for _, ms, _ in healthy])
                desc["breaker_transitions"] = transitions[:40]
                desc["breaker_first_open_s"] = first_open
                desc["after_open"] = _describe(after_open, cfg.seconds - (first_open or 0.0))
                later = [ms for t, ms in calls if first_open is not None and t >= first_open]
                desc["redis_calls_after_open"] = {
                    "count": len(later),
                    "max_ms": max(later, default=0.0),
                    "total_ms": sum(later),
                    "calls": [(round(t, 3), round(ms, 1)) for t, ms in calls][:40],
                }
                out[f"redis_{fault}"] = desc
            finally:
                if fault == "hung":
                    redis.resume()
                await reader.aclose()
                await l2.redis.aclose()
                redis.close()
    finally:
        await engine.dispose()
    return out
