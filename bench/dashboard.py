"""Dashboard GET and PATCH of a guild's settings under 10 and 50 concurrent clients, next to a
bare FastAPI endpoint serving the same document shape (the framework's ceiling on this machine).

Both servers run under uvicorn in a child process with the same options; the load generator is
an aiohttp client in this process (one core for the server, one for the client on 2 cores).
"""

from __future__ import annotations

import asyncio
import importlib.util
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from tests.support.processes import ChildProcess, free_port, wait_for_port

from bench.stats import summarize


@dataclass
class DashboardConfig:
    seconds: float
    concurrency: tuple[int, ...]


@dataclass
class Target:
    """A running server and how to talk to it."""

    base_url: str
    guild_ids: list[int]
    headers: Mapping[str, str]
    cookies: Mapping[str, str]


def start_uvicorn(
    app: str,
    env: Mapping[str, str] | None = None,
    factory: bool = False,
    port: int | None = None,
) -> tuple[ChildProcess, str]:
    port = port or free_port()
    args = ["uvicorn", app, "--host", "127.0.0.1", "--port", str(port)]
    args += ["--log-level", "warning", "--no-access-log"]
    if factory:
        args.append("--factory")
    child = ChildProcess.python_module(*args, env=env)
    wait_for_port("127.0.0.1", port, 60)
    return child, f"http://127.0.0.1:{port}"


async def load(
    target: Target,
    method: str,
    concurrency: int,
    seconds: float,
    body: Callable[[random.Random], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Closed loop: `concurrency` clients each send the next request when the last returns."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    stop = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(
        connector=connector, headers=dict(target.headers), cookies=dict(target.cookies)
    ) as session:

        async def client(c: int) -> None:
            rng = random.Random(c)
            gid = target.guild_ids[c % len(target.guild_ids)]
            url = f"{target.base_url}/api/guilds/{gid}/settings"
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                kwargs: dict[str, Any] = {}
                if body is not None:
                    kwargs["json"] = body(rng)
                async with session.request(method, url, **kwargs) as resp:
                    await resp.read()
                    statuses[resp.status] = statuses.get(resp.status, 0) + 1
                latencies.append((time.perf_counter() - t0) * 1000)

        t_start = time.perf_counter()
        await asyncio.gather(*(client(c) for c in range(concurrency)))
        elapsed = time.perf_counter() - t_start
    ok = sum(n for status, n in statuses.items() if 200 <= status < 300)
    return {
        "requests_per_s": ok / elapsed,
        "statuses": {str(k): v for k, v in statuses.items()},
        "ms": summarize(latencies),
    }


def patch_body(rng: random.Random) -> dict[str, Any]:
    return {
        "prefix": rng.choice(["!", "?", "$", "%%", "gk!"]),
        "welcome": {"enabled": rng.random() < 0.5},
    }


async def measure(
    target: Target, cfg: DashboardConfig, methods: tuple[str, ...] = ("GET", "PATCH")
) -> dict[str, Any]:
    out: dict[str, Any] = {method: {} for method in methods}
    await load(target, "GET", 4, min(0.5, cfg.seconds))  # warm-up
    for conc in cfg.concurrency:
        if "GET" in methods:
            out["GET"][str(conc)] = await load(target, "GET", conc, cfg.seconds)
        if "PATCH" in methods:
            out["PATCH"][str(conc)] = await load(target, "PATCH", conc, cfg.seconds, patch_body)
    return out


def dashboard_available() -> bool:
    return importlib.util.find_spec("guildkit.dashboard") is not None
