"""Propagation: commit → the new version served by another process, healthy and under faults.

One writer (this process) commits edits at a steady rate; after each commit it runs guildkit's
invalidation (tombstone + PUBLISH, bounded) and, detached, the naive one (DEL + PUBLISH of the
bare id). Two reader processes, one per design, read the same guilds and print when they first
serve each new version. Both designs see the same edits, the same Redis and the same fault at
the same time. Faults only ever hit this run's private redis-server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import string
import time
from dataclasses import dataclass
from typing import Any

from tests.support.processes import ChildProcess
from tests.support.redis_server import RedisServer
from tests.support.tcp_proxy import TcpProxy

from bench.env import BenchDatabase
from bench.naive import NaivePublisher, default_client
from bench.stats import summarize
from guildkit.settings.runtime import build_writing_side

SCENARIOS = ("healthy", "redis_killed", "redis_hung", "pubsub_blackholed")
DESIGNS = ("ours", "naive")


@dataclass
class PropagationConfig:
    edits: int
    rate: float  # edits per second
    guilds: int
    fault_from: float  # fraction of the edits after which the fault starts
    fault_to: float  # ... and ends
    settle_seconds: float  # wait for stragglers after the last edit


def _patch(rng: random.Random) -> dict[str, Any]:
    return {"prefix": "".join(rng.choices(string.ascii_letters + "!?$%", k=rng.randint(1, 5)))}


async def run_scenario(
    db: BenchDatabase, scenario: str, guild_ids: list[int], cfg: PropagationConfig
) -> dict[str, Any]:
    redis = RedisServer()
    proxy: TcpProxy | None = None
    children: dict[str, ChildProcess] = {}
    engine = db.engine(pool_size=2)
    side = build_writing_side(engine, redis_url=redis.url)
    naive_redis = default_client(redis.url)
    naive_pub = NaivePublisher(naive_redis)
    naive_tasks: set[asyncio.Task[None]] = set()
    guilds = guild_ids[: cfg.guilds]
    commits: list[tuple[int, int, float]] = []  # (guild, version, commit time)
    fault_window: list[float] = []
    try:
        pubsub_url = redis.url
        if scenario == "pubsub_blackholed":
            proxy = TcpProxy(redis.host, redis.port).start_in_thread()
            pubsub_url = proxy.url("redis", "/0")
        for design in DESIGNS:
            args = ["--design", design, "--database-url", db.url, "--redis-url", redis.url]
            args += ["--pubsub-url", pubsub_url]
            for g in guilds:
                args += ["--guild", str(g)]
            children[design] = ChildProcess.python_module("bench.child_reader", *args)
        for child in children.values():
            child.wait_for_line(lambda line: '"event":"ready"' in line, timeout=60)
        rng = random.Random(hash(scenario) & 0xFFFF)
        fault_start = int(cfg.edits * cfg.fault_from)
        fault_end = int(cfg.edits * cfg.fault_to)
        t0 = time.monotonic()
        for i in range(cfg.edits):
            if scenario != "healthy" and i == fault_start:
                fault_window.append(time.time())
                _fault_on(scenario, redis, proxy)
            if scenario != "healthy" and i == fault_end:
                _fault_off(scenario, redis, proxy)
                fault_window.append(time.time())
            gid = guilds[i % len(guilds)]
            result = await side.store.patch(gid, _patch(rng), actor="bench")
            t_commit = time.time()
            if result.signal is None:
                continue
            commits.append((gid, result.current.version, t_commit))
            await side.writer._publisher.publish(result.signal)
            task = asyncio.get_running_loop().create_task(_naive_invalidate(naive_pub, gid))
            naive_tasks.add(task)
            task.add_done_callback(naive_tasks.discard)
            delay = t0 + (i + 1) / cfg.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        if scenario != "healthy" and len(fault_window) == 1:
            _fault_off(scenario, redis, proxy)
            fault_window.append(time.time())
        await asyncio.sleep(cfg.settle_seconds)
        out: dict[str, Any] = {"fault_window": fault_window, "commits": len(commits)}
        for design, child in children.items():
            applied = _parse_applied(child.output)
            out[design] = _latencies(commits, applied, fault_window)
        out["ours"]["signals"] = _signal_stats(commits, children["ours"].output)
        out["publisher_failures"] = side.writer._publisher.failures
        return out
    finally:
        for task in naive_tasks:
            task.cancel()
        for child in children.values():
            child.kill()
        if proxy is not None:
            proxy.close()
        await naive_redis.aclose()
        await side.close()
        await engine.dispose()
        redis.close()


async def _naive_invalidate(pub: NaivePublisher, gid: int) -> None:
    # Detached: with the default client this may wait forever on a hung Redis; the seed's
    # request handler would hang with it. We keep committing so the readers can be measured.
    with contextlib.suppress(Exception):
        await pub.invalidate(gid)


def _fault_on(scenario: str, redis: RedisServer, proxy: TcpProxy | None) -> None:
    if scenario == "redis_killed":
        redis.kill()
    elif scenario == "redis_hung":
        redis.pause()
    elif scenario == "pubsub_blackholed":
        assert proxy is not None
        proxy.blackhole()


def _fault_off(scenario: str, redis: RedisServer, proxy: TcpProxy | None) -> None:
    if scenario == "redis_killed":
        redis.start()
    elif scenario == "redis_hung":
        redis.resume()
    elif scenario == "pubsub_blackholed":
        assert proxy is not None
        proxy.restore()


def _parse_applied(lines: list[str]) -> dict[int, list[tuple[int, float]]]:
    applied: dict[int, list[tuple[int, float]]] = {}
    for line in list(lines):
        if not line.startswith("{"):
            continue
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if doc.get("event") == "applied":
            applied.setdefault(int(doc["g"]), []).append((int(doc["v"]), float(doc["t"])))
    return applied


def _latencies(
    commits: list[tuple[int, int, float]],
    applied: dict[int, list[tuple[int, float]]],
    fault_window: list[float],
) -> dict[str, Any]:
    """Per commit: the first time the reader served that version or a newer one."""
    per_commit: list[tuple[float, float | None]] = []  # (commit time, latency or None)
    for gid, version, t_commit in commits:
        first = next((t for v, t in applied.get(gid, []) if v >= version), None)
        per_commit.append((t_commit, None if first is None else max(0.0, first - t_commit)))
    seen = [lat for _, lat in per_commit if lat is not None]
    in_fault = [
        lat
        for t, lat in per_commit
        if lat is not None and len(fault_window) == 2 and fault_window[0] <= t <= fault_window[1]
    ]
    return {
        "ms": summarize(seen, 1000.0),
        "during_fault_ms": summarize(in_fault, 1000.0) if fault_window else None,
        "never_applied": sum(1 for _, lat in per_commit if lat is None),
        "series": [(t, lat) for t, lat in per_commit],
    }


def _signal_stats(commits: list[tuple[int, int, float]], lines: list[str]) -> dict[str, Any]:
    """guildkit only: commit → first change signal per edit, and which path delivered first."""
    first: dict[tuple[int, int], tuple[float, str]] = {}
    for line in list(lines):
        if not line.startswith('{"event":"signal"'):
            continue
        doc = json.loads(line)
        key = (int(doc["g"]), int(doc["v"]))
        if key not in first:
            first[key] = (float(doc["t"]), str(doc["path"]))
    lat: list[float] = []
    paths: dict[str, int] = {}
    for gid, version, t_commit in commits:
        hit = first.get((gid, version))
        if hit is None:
            continue
        lat.append(max(0.0, hit[0] - t_commit))
        paths[hit[1]] = paths.get(hit[1], 0) + 1
    return {"commit_to_signal_ms": summarize(lat, 1000.0), "first_path": paths}
