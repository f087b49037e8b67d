"""Hot-path reads per tier next to their limits, and read throughput under concurrency.

Each subject and its peer run in alternating blocks in the same process, so drift of the shared
machine hits both alike. Every sample is one call timed with perf_counter_ns.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import create_async_engine

from bench.env import BenchDatabase
from bench.naive import NaiveSettingsCache, default_client, naive_key
from bench.proposed import (
    AutocommitReadStore,
    DriverReadStore,
    VersionPeekingCache,
    VersionPeekingReader,
)
from bench.stats import ratio, summarize
from guildkit.db.engine import create_engine, create_read_engine
from guildkit.settings.model import GuildSettings
from guildkit.settings.reader import SettingsReader, Tier
from guildkit.settings.redis_cache import RedisSettingsCache, decode, encode_value, key_for
from guildkit.settings.redis_client import cache_client
from guildkit.settings.store import SettingsStore

RAW_SELECT = (
    "SELECT guild_id, settings::text AS settings_json, version, change_seq, updated_at, "
    "updated_by FROM guild_settings WHERE guild_id = $1"
)


@dataclass
class ReadsConfig:
    l1_samples: int
    l2_samples: int
    db_samples: int
    rounds: int
    throughput_seconds: float
    concurrency: tuple[int, ...]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def _timed_async(fn: Callable[[int], Awaitable[Any]], ids: list[int], n: int) -> list[int]:
    out = [0] * n
    count = len(ids)
    pc = time.perf_counter_ns
    for i in range(n):
        gid = ids[i % count]
        t0 = pc()
        await fn(gid)
        out[i] = pc() - t0
    return out


def _timed_sync(fn: Callable[[int], Any], ids: list[int], n: int) -> list[int]:
    out = [0] * n
    count = len(ids)
    pc = time.perf_counter_ns
    for i in range(n):
        gid = ids[i % count]
        t0 = pc()
        fn(gid)
        out[i] = pc() - t0
    return out


async def _interleaved(
    subjects: dict[str, Callable[[int], Awaitable[list[int]]]], n: int, rounds: int
) -> dict[str, list[int]]:
    """Run each subject for n/rounds samples per round, alternating, and pool the samples."""
    samples: dict[str, list[int]] = {name: [] for name in subjects}
    per_round = max(1, n // rounds)
    for _ in range(rounds):
        for name, run in subjects.items():
            samples[name].extend(await run(per_round))
    return samples


async def run_reads(
    db: BenchDatabase, redis_url: str, ids: list[int], cfg: ReadsConfig
) -> dict[str, Any]:
    engine = create_engine(db.sqlalchemy_url, pool_size=10)
    # Diagnostic only: the same engine without pool_pre_ping, to see what the ping costs.
    engine_noping = create_async_engine(
        db.sqlalchemy_url, pool_size=10, max_overflow=10, pool_pre_ping=False
    )
    # As the bot and dashboard build it: reads on the autocommit, no-pre-ping read engine.
    read_engine = create_read_engine(db.sqlalchemy_url, pool_size=10)
    store = SettingsStore(engine, read_engine=read_engine)
    store_noping = SettingsStore(engine_noping)
    # The proposed fix (see results.md): reads in autocommit mode, so no BEGIN/ROLLBACK round
    # trips around the SELECT, with and without pool_pre_ping's extra round trip.
    store_ac = SettingsStore(engine.execution_options(isolation_level="AUTOCOMMIT"))
    store_ac_noping = AutocommitReadStore(engine_noping)
    store_driver = DriverReadStore(engine_noping)
    l2 = RedisSettingsCache(cache_client(redis_url))
    raw_redis: Redis = Redis.from_url(redis_url)
    naive_redis = default_client(redis_url)
    naive = NaiveSettingsCache(naive_redis, store)
    held = await asyncpg.connect(db.dsn)
    pool = await asyncpg.create_pool(db.dsn, min_size=10, max_size=20)
    result: dict[str, Any] = {}
    try:
        pool_ids = ids[:1000]
        # Fill L2 and the naive keys with the same documents.
        values = await store.get_many(pool_ids)
        await l2.fill_many([(g, v.version, v.settings) for g, v in values.items()])
        pipe = naive_redis.pipeline(transaction=False)
        for g, v in values.items():
            pipe.set(naive_key(g), encode_value(v.version, v.settings.model_dump_json()))
        await pipe.execute()

        # -- L1 hit vs a dict lookup ----------------------------------------------------------
        l1_reader = SettingsReader(store, None)
        await l1_reader.warm(pool_ids)
        table = {g: await l1_reader.get(g) for g in pool_ids}
        assert (await l1_reader.get(pool_ids[0])).tier is Tier.L1

        async def l1(n: int) -> list[int]:
            return await _timed_async(l1_reader.get, pool_ids, n)

        async def dict_lookup(n: int) -> list[int]:
            return _timed_sync(table.get, pool_ids, n)

        async def empty(n: int) -> list[int]:
            return _timed_sync(lambda _g: None, pool_ids, n)

        # -- L2 hit vs a raw GET of the same JSON -------------------------------------------
        clock = FakeClock()
        l2_reader = SettingsReader(store, l2, clock=clock)
        await l2_reader.warm(pool_ids)

        async def l2_get(gid: int) -> None:
            clock.now += 1000.0  # every L1 entry has expired; the floor is known → L2
            read = await l2_reader.get(gid)
            if read.tier is not Tier.L2:
                raise AssertionError(f"expected an L2 hit, got {read.tier}")

        peek_l2 = VersionPeekingCache(l2.redis)
        peek_reader = VersionPeekingReader(store, peek_l2, clock=clock)
        await peek_reader.warm(pool_ids)

        async def l2_peek_get(gid: int) -> None:
            clock.now += 1000.0
            read = await peek_reader.get(gid)
            if read.tier is not Tier.L2:
                raise AssertionError(f"expected an L2 hit, got {read.tier}")

        async def l2_proposed(n: int) -> list[int]:
            return await _timed_async(l2_peek_get, pool_ids, n)

        async def l2_hit(n: int) -> list[int]:
            return await _timed_async(l2_get, pool_ids, n)

        async def raw_get(n: int) -> list[int]:
            return await _timed_async(lambda g: raw_redis.get(key_for(g)), pool_ids, n)

        async def l2_cache_get(n: int) -> list[int]:
            return await _timed_async(l2.get, pool_ids, n)

        async def raw_get_decode(n: int) -> list[int]:
            async def one(g: int) -> None:
                raw = await raw_redis.get(key_for(g))
                assert raw is not None
                decode(raw)

            return await _timed_async(one, pool_ids, n)

        async def naive_get(n: int) -> list[int]:
            return await _timed_async(naive.get, pool_ids, n)

        # -- DB miss vs a raw asyncpg select on a held connection ----------------------------
        db_reader = SettingsReader(store, None)
        db_ids = ids[: max(1000, min(len(ids), 5000))]

        async def db_get(gid: int) -> None:
            db_reader.forget(gid)
            read = await db_reader.get(gid)
            if read.tier is not Tier.DB:
                raise AssertionError(f"expected a DB read, got {read.tier}")

        async def db_miss(n: int) -> list[int]:
            return await _timed_async(db_get, db_ids, n)

        async def raw_select(n: int) -> list[int]:
            return await _timed_async(lambda g: held.fetchrow(RAW_SELECT, g), db_ids, n)

        async def raw_select_parse(n: int) -> list[int]:
            async def one(g: int) -> None:
                row = await held.fetchrow(RAW_SELECT, g)
                GuildSettings.model_validate_json(row["settings_json"])

            return await _timed_async(one, db_ids, n)

        async def store_get(n: int) -> list[int]:
            return await _timed_async(store.get, db_ids, n)

        async def store_get_noping(n: int) -> list[int]:
            return await _timed_async(store_noping.get, db_ids, n)

        async def store_get_ac(n: int) -> list[int]:
            return await _timed_async(store_ac.get, db_ids, n)

        async def store_get_ac_noping(n: int) -> list[int]:
            return await _timed_async(store_ac_noping.get, db_ids, n)

        async def store_get_driver(n: int) -> list[int]:
            return await _timed_async(store_driver.get, db_ids, n)

        proposed_reader = SettingsReader(store_ac_noping, None)
        proposed_b_reader = SettingsReader(store_driver, None)

        async def proposed_b_get(gid: int) -> None:
            proposed_b_reader.forget(gid)
            await proposed_b_reader.get(gid)

        async def db_miss_proposed_b(n: int) -> list[int]:
            return await _timed_async(proposed_b_get, db_ids, n)

        async def proposed_get(gid: int) -> None:
            proposed_reader.forget(gid)
            await proposed_reader.get(gid)

        async def db_miss_proposed(n: int) -> list[int]:
            return await _timed_async(proposed_get, db_ids, n)

        async def pool_select(n: int) -> list[int]:
            async def one(g: int) -> None:
                async with pool.acquire() as c:
                    await c.fetchrow(RAW_SELECT, g)

            return await _timed_async(one, db_ids, n)

        # warm-up of every path (connections, prepared statements, caches)
        for fn in (
            l1,
            dict_lookup,
            l2_hit,
            l2_proposed,
            l2_cache_get,
            raw_get,
            raw_get_decode,
            naive_get,
            db_miss,
            raw_select,
            store_get,
            store_get_noping,
            store_get_ac,
            store_get_ac_noping,
            db_miss_proposed,
            store_get_driver,
            db_miss_proposed_b,
            pool_select,
        ):
            await fn(50)

        lat: dict[str, list[int]] = {}
        lat.update(
            await _interleaved(
                {"empty_loop": empty, "dict": dict_lookup, "l1": l1}, cfg.l1_samples, cfg.rounds
            )
        )
        lat.update(
            await _interleaved(
                {
                    "l2": l2_hit,
                    "raw_get": raw_get,
                    "l2_proposed": l2_proposed,
                    "l2_cache_get": l2_cache_get,
                    "raw_get_decode": raw_get_decode,
                    "naive_read": naive_get,
                },
                cfg.l2_samples,
                cfg.rounds,
            )
        )
        lat.update(
            await _interleaved(
                {
                    "db": db_miss,
                    "raw_select": raw_select,
                    "raw_select_parse": raw_select_parse,
                    "store_get": store_get,
                    "store_get_no_pre_ping": store_get_noping,
                    "store_get_autocommit": store_get_ac,
                    "store_get_autocommit_no_pre_ping": store_get_ac_noping,
                    "store_get_driver": store_get_driver,
                    "db_proposed": db_miss_proposed,
                    "db_proposed_b": db_miss_proposed_b,
                    "asyncpg_pool_select": pool_select,
                },
                cfg.db_samples,
                cfg.rounds,
            )
        )
        summaries = {name: summarize(v, 1e-3) for name, v in lat.items()}  # µs
        result["latency_us"] = summaries
        result["samples_us"] = {name: [x / 1000 for x in v] for name, v in lat.items()}
        pairs = {
            "l1_vs_dict": ("l1", "dict"),
            "l2_vs_raw_get": ("l2", "raw_get"),
            "db_vs_raw_select": ("db", "raw_select"),
            "naive_read_vs_l1": ("naive_read", "l1"),
            "l2_proposed_vs_raw_get": ("l2_proposed", "raw_get"),
            "l2_cache_get_vs_raw_get": ("l2_cache_get", "raw_get"),
            "raw_get_decode_vs_raw_get": ("raw_get_decode", "raw_get"),
            "store_get_vs_raw_select": ("store_get", "raw_select"),
            "store_get_autocommit_vs_raw_select": ("store_get_autocommit", "raw_select"),
            "store_get_autocommit_no_pre_ping_vs_raw_select": (
                "store_get_autocommit_no_pre_ping",
                "raw_select",
            ),
            "db_proposed_vs_raw_select": ("db_proposed", "raw_select"),
            "db_proposed_b_vs_raw_select": ("db_proposed_b", "raw_select"),
            "store_get_no_pre_ping_vs_raw_select": ("store_get_no_pre_ping", "raw_select"),
            "raw_select_parse_vs_raw_select": ("raw_select_parse", "raw_select"),
        }
        result["ratios"] = {
            name: {
                "p50": ratio(summaries[a]["p50"], summaries[b]["p50"]),
                "p99": ratio(summaries[a]["p99"], summaries[b]["p99"]),
            }
            for name, (a, b) in pairs.items()
        }
        result["stats"] = {
            "l2_reader": vars(l2_reader.stats).copy(),
            "db_reader": vars(db_reader.stats).copy(),
        }

        # -- throughput ------------------------------------------------------------------------
        async def tp_l1(g: int) -> None:
            await l1_reader.get(g)

        async def tp_raw_select(g: int) -> None:
            async with pool.acquire() as c:
                await c.fetchrow(RAW_SELECT, g)

        async def tp_raw_get(g: int) -> None:
            await raw_redis.get(key_for(g))

        async def tp_l2(g: int) -> None:
            clock.now += 1000.0
            await l2_reader.get(g)

        tp_subjects: dict[str, Callable[[int], Awaitable[Any]]] = {
            "l1": tp_l1,
            "l2": tp_l2,
            "raw_get": tp_raw_get,
            "naive_read": naive.get,
            "db": db_get,
            "db_proposed": proposed_get,
            "db_proposed_b": proposed_b_get,
            "raw_select_pool": tp_raw_select,
        }
        throughput: dict[str, dict[str, float]] = {name: {} for name in tp_subjects}
        for conc in cfg.concurrency:
            for name, subject in tp_subjects.items():
                src = db_ids if name.startswith("db") or name == "raw_select_pool" else pool_ids
                throughput[name][str(conc)] = await _throughput(
                    subject, src, conc, cfg.throughput_seconds
                )
        result["throughput_rps"] = throughput
    finally:
        await naive.aclose()
        await held.close()
        await pool.close()
        await raw_redis.aclose()
        await naive_redis.aclose()
        await l2.redis.aclose()
        await engine.dispose()
        await engine_noping.dispose()
        await read_engine.dispose()
    return result


async def _throughput(
    fn: Callable[[int], Awaitable[Any]], ids: list[int], concurrency: int, seconds: float
) -> float:
    stop = False
    counts = [0] * concurrency
    # Disjoint guilds per worker so single-flight never merges two workers' reads.
    per = max(1, len(ids) // concurrency)

    async def worker(w: int) -> None:
        mine = ids[w * per : (w + 1) * per] or ids
        i = 0
        n = len(mine)
        while not stop:
            await fn(mine[i % n])
            i += 1
            if i % 64 == 0:
                await asyncio.sleep(0)  # L1 hits never yield; let the timer fire
        counts[w] = i

    async def timer() -> None:
        nonlocal stop
        await asyncio.sleep(seconds)
        stop = True

    t0 = time.perf_counter()
    await asyncio.gather(timer(), *(worker(w) for w in range(concurrency)))
    return sum(counts) / (time.perf_counter() - t0)
