"""A reading process for the propagation runs, one per design, printing one JSON line per event.

  {"event": "ready", "t": ...}
  {"event": "applied", "g": "<guild>", "v": n, "t": <time.time() when a read returned v>}

`--design ours` uses the settings layer as the bot does (build_reading_side: L1 → L2 → PostgreSQL,
Pub/Sub + LISTEN/NOTIFY + catch-up). `--design naive` uses bench.naive (every read a Redis GET).
Either way a change signal triggers an immediate read of that guild, and every guild is also
read every `--poll` seconds, as a bot handling messages would.

Run: python -m bench.child_reader --design ours|naive --database-url URL --redis-url URL
       [--pubsub-url URL] --guild ID [--guild ID ...]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bench.naive import NaiveSettingsCache, default_client, naive_subscriber
from guildkit.config import to_asyncpg_dsn, to_sqlalchemy_url
from guildkit.db.engine import create_engine
from guildkit.settings.listener import ListenerTiming
from guildkit.settings.runtime import build_reading_side
from guildkit.settings.store import SettingsStore
from guildkit.settings.types import ChangeSignal


def emit(**fields: Any) -> None:
    fields.setdefault("t", time.time())
    sys.stdout.write(json.dumps(fields, separators=(",", ":")) + "\n")
    sys.stdout.flush()


class Tracker:
    def __init__(self, read: Callable[[int], Awaitable[int]], guilds: list[int]) -> None:
        self._read = read
        self._guilds = guilds
        self._last: dict[int, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def read_one(self, gid: int) -> None:
        try:
            version = await self._read(gid)
        except Exception as exc:
            emit(event="error", g=str(gid), error=repr(exc)[:200])
            return
        if version > self._last.get(gid, -1):
            self._last[gid] = version
            emit(event="applied", g=str(gid), v=version)

    def poke(self, gid: int) -> None:
        if gid in self._last:
            task = asyncio.get_running_loop().create_task(self.read_one(gid))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def poll(self, interval: float, stop: asyncio.Event) -> None:
        while not stop.is_set():
            for gid in self._guilds:
                await self.read_one(gid)
            await asyncio.sleep(interval)


async def main(args: argparse.Namespace) -> None:
    guilds = [int(g) for g in args.guild]
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    engine = create_engine(to_sqlalchemy_url(args.database_url), pool_size=4)
    if args.design == "ours":
        side = build_reading_side(
            engine,
            pg_dsn=to_asyncpg_dsn(args.database_url),
            redis_url=args.redis_url,
            pubsub_url=args.pubsub_url,
            report_status=False,
            timing=ListenerTiming(
                catchup_interval=1.0,
                watchdog_interval=0.5,
                watchdog_timeout=1.0,
                reconnect_backoff_max=1.0,
            ),
        )

        async def read_ours(gid: int) -> int:
            return (await side.reader.get(gid)).version

        tracker = Tracker(read_ours, guilds)

        def on_signal(sig: ChangeSignal, path: str) -> None:
            emit(event="signal", g=str(sig.guild_id), v=sig.version, path=path)
            tracker.poke(sig.guild_id)

        side.listener.add_observer(on_signal)
        await side.start()
        await side.listener.wait_connected(10, paths=("notify", "redis"))
        await side.reader.warm(guilds)
        for gid in guilds:
            await tracker.read_one(gid)
        emit(event="ready")
        await tracker.poll(args.poll, stop)
        await side.stop()
    else:
        redis = default_client(args.redis_url)
        cache = NaiveSettingsCache(redis, SettingsStore(engine))

        async def read_naive(gid: int) -> int:
            return (await cache.get(gid)).version

        tracker = Tracker(read_naive, guilds)
        sub = asyncio.get_running_loop().create_task(
            naive_subscriber(default_client(args.pubsub_url or args.redis_url), cache, tracker.poke)
        )
        await cache.startup(guilds)
        for gid in guilds:
            await tracker.read_one(gid)
        await asyncio.sleep(0.2)  # let the subscription land
        emit(event="ready")
        await tracker.poll(args.poll, stop)
        sub.cancel()
        with contextlib.suppress(BaseException):
            await sub
        await cache.aclose()
    await engine.dispose()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--design", choices=("ours", "naive"), required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--pubsub-url")
    parser.add_argument("--guild", action="append", required=True)
    parser.add_argument("--poll", type=float, default=0.05)
    return parser.parse_args(argv)


if __name__ == "__main__":
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    asyncio.run(main(parse_args()))
