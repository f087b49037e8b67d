"""Startup: warm N guilds with one query (guildkit) vs the seed's getOrFetch loop per guild."""

from __future__ import annotations

import gc
import json
import sys
import time
from dataclasses import dataclass
from typing import Any

from tests.support.processes import ChildProcess

from bench.env import BenchDatabase
from bench.naive import NaiveSettingsCache, default_client
from guildkit.settings.reader import SettingsReader
from guildkit.settings.store import SettingsStore, _parse_settings


@dataclass
class StartupConfig:
    sizes: tuple[int, ...]
    naive_cap: int  # the naive loop runs at most this many guilds; the rest is extrapolated
    repeats: int


async def run_startup(
    db: BenchDatabase, redis_url: str, ids: list[int], cfg: StartupConfig
) -> dict[str, Any]:
    engine = db.engine(pool_size=4)
    store = SettingsStore(engine)
    out: dict[str, Any] = {"ours": {}, "naive": {}}
    try:
        await SettingsReader(store).warm(ids[:100])  # connections, statement cache
        for size in cfg.sizes:
            runs = []
            for _ in range(cfg.repeats):
                reader = SettingsReader(store)
                _parse_settings.cache_clear()
                gc.collect()
                t0 = time.perf_counter()
                installed = await reader.warm(ids[:size])
                runs.append(time.perf_counter() - t0)
                assert installed == size, (installed, size)
            out["ours"][str(size)] = {"seconds": min(runs), "runs": runs}
            # Proposal C (see results.md): the same warm-up with the cyclic GC paused while it
            # allocates 100k long-lived objects, then those objects frozen out of later scans.
            paused = []
            for _ in range(cfg.repeats):
                reader = SettingsReader(store)
                _parse_settings.cache_clear()
                gc.collect()
                t0 = time.perf_counter()
                gc.disable()
                try:
                    await reader.warm(ids[:size])
                finally:
                    gc.enable()
                gc.freeze()
                paused.append(time.perf_counter() - t0)
                gc.unfreeze()
            out.setdefault("ours_gc_paused", {})[str(size)] = {
                "seconds": min(paused),
                "runs": paused,
            }
        # The naive loop on a cold Redis (a restart): GET miss → SELECT → SET, per guild.
        redis = default_client(redis_url)
        try:
            await redis.flushdb()  # the run's private redis-server
            cap = min(cfg.naive_cap, len(ids))
            naive = NaiveSettingsCache(redis, store)
            t0 = time.perf_counter()
            await naive.startup(ids[:cap])
            measured = time.perf_counter() - t0
            await naive.aclose()
        finally:
            await redis.aclose()
        per_guild = measured / cap
        for size in cfg.sizes:
            out["naive"][str(size)] = {
                "seconds": per_guild * size,
                "extrapolated": size > cap,
            }
        out["naive_measured"] = {
            "guilds": cap,
            "seconds": measured,
            "per_guild_ms": per_guild * 1e3,
        }
    finally:
        await engine.dispose()
    return out


def run_memory(db: BenchDatabase, sizes: tuple[int, ...]) -> dict[str, Any]:
    """RSS of a fresh reader process before and after warming N guilds (distinct documents)."""
    child = ChildProcess.python_module(
        "bench.memproc", "--database-url", db.url, *[f"--size={s}" for s in sizes]
    )
    try:
        line = child.wait_for_line(lambda s: s.startswith('{"event": "memory"'), timeout=300)
    finally:
        child.kill()
    doc: dict[str, Any] = json.loads(line)
    base = doc["rss_kb"]["0"]
    largest = max(sizes)
    doc["per_10k_guilds_mb"] = (doc["rss_kb"][str(largest)] - base) / 1024 / (largest / 10_000)
    return doc


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run python -m bench")
