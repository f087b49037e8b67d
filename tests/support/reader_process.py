"""A reading process that uses the settings layer exactly as the bot does, for cross-process
tests: it warms its guilds, listens for changes, reads every guild in a loop, and prints one JSON
line per event on stdout:

  {"event": "ready", ...}
  {"event": "signal", "path": "redis"|"notify"|"catchup", "guild": "...", "version": n, "t": ...}
  {"event": "read", "guild": "...", "version": n, "tier": "l1"|..., "t": ...}   (on each change)
  {"event": "error", "guild": "...", "error": "...", "t": ...}

Run: python -m tests.support.reader_process --database-url URL [--redis-url URL]
       [--pubsub-url URL] --guild ID [--guild ID ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import time
from typing import Any

from guildkit.config import to_asyncpg_dsn, to_sqlalchemy_url
from guildkit.db.engine import create_engine
from guildkit.settings.listener import ListenerTiming
from guildkit.settings.runtime import build_reading_side
from guildkit.settings.types import ChangeSignal


def emit(**fields: Any) -> None:
    fields.setdefault("t", time.time())
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


async def main(args: argparse.Namespace) -> None:
    engine = create_engine(to_sqlalchemy_url(args.database_url), pool_size=4)
    side = build_reading_side(
        engine,
        pg_dsn=to_asyncpg_dsn(args.database_url),
        redis_url=args.redis_url,
        pubsub_url=args.pubsub_url,
        listen_dsn=to_asyncpg_dsn(args.listen_database_url) if args.listen_database_url else None,
        instance_id=args.instance_id,
        timing=ListenerTiming(
            catchup_interval=args.catchup_interval,
            watchdog_interval=0.5,
            watchdog_timeout=1.0,
            reconnect_backoff_max=1.0,
        ),
        l1_ttl_seconds=args.l1_ttl,
    )
    guilds = [int(g) for g in args.guild]

    def on_signal(sig: ChangeSignal, path: str) -> None:
        if sig.guild_id in guilds:
            emit(
                event="signal",
                path=path,
                guild=str(sig.guild_id),
                version=sig.version,
                change_seq=sig.change_seq,
            )

    side.listener.add_observer(on_signal)
    side.listener.add_connection_observer(
        lambda path, connected: emit(event="connection", path=path, connected=connected)
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await side.start()
    await side.listener.wait_connected(10)
    if args.wait_redis:
        await side.listener.wait_connected(10, paths=("redis",))
    await side.reader.warm(guilds)
    emit(
        event="ready",
        connected=side.listener.connected_paths(),
        instance_id=side.reporter.instance_id if side.reporter else None,
    )
    last: dict[int, int] = {}
    while not stop.is_set():
        for gid in guilds:
            try:
                read = await side.reader.get(gid)
            except Exception as exc:
                emit(event="error", guild=str(gid), error=repr(exc))
                continue
            if last.get(gid) != read.version:
                last[gid] = read.version
                emit(
                    event="read",
                    guild=str(gid),
                    version=read.version,
                    tier=read.tier.value,
                    prefix=read.settings.prefix,
                )
        await asyncio.sleep(args.poll)
    await side.stop()
    await engine.dispose()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--redis-url")
    parser.add_argument("--pubsub-url")
    parser.add_argument("--listen-database-url")
    parser.add_argument("--guild", action="append", required=True)
    parser.add_argument("--poll", type=float, default=0.005)
    parser.add_argument("--catchup-interval", type=float, default=1.0)
    parser.add_argument("--l1-ttl", type=float, default=300.0)
    parser.add_argument("--instance-id")
    parser.add_argument("--wait-redis", action="store_true", help="ready only once subscribed")
    return parser.parse_args(argv)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(main(parse_args()))
