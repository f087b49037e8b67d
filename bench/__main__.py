"""`python -m bench [--smoke] [--out DIR] [--only SECTION,...]`: run the benchmarks and write
results.md, results.json and PNG plots into DIR (default: this package's directory)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from bench import report
from bench.dashboard import DashboardConfig
from bench.env import bench_database, populate, private_redis
from bench.propagation import PropagationConfig
from bench.reads import ReadsConfig
from bench.redis_down import RedisDownConfig
from bench.startup import StartupConfig

SECTIONS = ("reads", "redis_down", "startup", "memory", "propagation", "dashboard")


def configs(smoke: bool) -> dict[str, Any]:
    if smoke:
        return {
            "guilds": 2_000,
            "reads": ReadsConfig(2_000, 100, 60, 2, 0.1, (1, 10)),
            "redis_down": RedisDownConfig(0.5, 4),
            "startup": StartupConfig((100, 1_000), 50, 1),
            "memory": (1_000,),
            "propagation": PropagationConfig(30, 30.0, 5, 0.3, 0.6, 2.0),
            "propagation_scenarios": ("healthy",),
            "dashboard": DashboardConfig(0.3, (10,)),
        }
    return {
        "guilds": 100_000,
        "reads": ReadsConfig(200_000, 6_000, 2_000, 10, 1.0, (1, 10, 100)),
        "redis_down": RedisDownConfig(4.0, 10),
        "startup": StartupConfig((1_000, 10_000, 100_000), 2_000, 3),
        "memory": (10_000, 100_000),
        "propagation": PropagationConfig(1_000, 50.0, 20, 0.25, 0.75, 6.0),
        "propagation_scenarios": (
            "healthy",
            "redis_killed",
            "redis_hung",
            "pubsub_blackholed",
        ),
        "dashboard": DashboardConfig(3.0, (10, 50)),
    }


def machine() -> dict[str, Any]:
    load = os.getloadavg()
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_at_start": [round(x, 2) for x in load],
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    cfg = configs(args.smoke)
    only = set(args.only.split(",")) if args.only else set(SECTIONS)
    results: dict[str, Any] = {
        "mode": "smoke" if args.smoke else "full",
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": machine(),
        "config": {k: repr(v) for k, v in cfg.items()},
        "sections_seconds": {},
    }

    def timed(name: str, t0: float) -> None:
        results["sections_seconds"][name] = round(time.perf_counter() - t0, 1)
        print(f"bench: {name} done in {results['sections_seconds'][name]} s", file=sys.stderr)

    async with bench_database() as db:
        t0 = time.perf_counter()
        ids = await populate(db, cfg["guilds"])
        timed("populate", t0)
        redis = private_redis()
        try:
            if "reads" in only:
                from bench.reads import run_reads

                t0 = time.perf_counter()
                results["reads"] = await run_reads(db, redis.url, ids, cfg["reads"])
                timed("reads", t0)
            if "redis_down" in only:
                from bench.redis_down import run_redis_down

                t0 = time.perf_counter()
                results["redis_down"] = await run_redis_down(db, ids, cfg["redis_down"])
                timed("redis_down", t0)
            if "startup" in only:
                from bench.startup import run_startup

                t0 = time.perf_counter()
                results["startup"] = await run_startup(db, redis.url, ids, cfg["startup"])
                timed("startup", t0)
            if "memory" in only:
                from bench.startup import run_memory

                t0 = time.perf_counter()
                results["memory"] = await asyncio.to_thread(run_memory, db, cfg["memory"])
                timed("memory", t0)
        finally:
            redis.close()
        if "propagation" in only:
            from bench.propagation import run_scenario

            t0 = time.perf_counter()
            results["propagation"] = {}
            for scenario in cfg["propagation_scenarios"]:
                results["propagation"][scenario] = await run_scenario(
                    db, scenario, ids, cfg["propagation"]
                )
                print(f"bench: propagation {scenario} done", file=sys.stderr)
            timed("propagation", t0)
        if "dashboard" in only:
            from bench.dashboard_run import run_dashboard

            t0 = time.perf_counter()
            results["dashboard"] = await run_dashboard(db, ids, cfg["dashboard"])
            timed("dashboard", t0)
    results["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="a tiny run in seconds (for tests)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--only", help=f"comma-separated sections of {','.join(SECTIONS)}")
    parser.add_argument(
        "--rewrite-md",
        action="store_true",
        help="only rewrite results.md from the results.json in --out (e.g. after editing "
        "bench/findings.md); measures nothing",
    )
    args = parser.parse_args(argv)
    if args.rewrite_md:
        results = json.loads((args.out / "results.json").read_text())
        plots = [p for p in ("reads_latency.png", "propagation.png") if (args.out / p).is_file()]
        (args.out / "results.md").write_text(report.markdown(results, plots))
        return 0
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    t0 = time.perf_counter()
    results = asyncio.run(run(args))
    results["total_seconds"] = round(time.perf_counter() - t0, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    plots = report.plots(results, args.out)
    (args.out / "results.md").write_text(report.markdown(results, plots))
    (args.out / "results.json").write_text(json.dumps(report.for_json(results), indent=1) + "\n")
    print(
        f"bench: wrote {args.out / 'results.md'} in {results['total_seconds']} s", file=sys.stderr
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
