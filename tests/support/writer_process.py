"""A writing process for the history check: patches random fields of its guilds through the
settings writer (as the dashboard does) and prints one JSON line per acknowledged write:

  {"event": "ack", "guild": "...", "version": n, "t": <time after commit returned>}
  {"event": "write_error", "guild": "...", "error": "...", "t": ...}
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import string
import sys
import time
from typing import Any

from guildkit.config import to_sqlalchemy_url
from guildkit.db.engine import create_engine
from guildkit.settings.runtime import build_writing_side


def emit(**fields: Any) -> None:
    fields.setdefault("t", time.time())
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def random_patch(rng: random.Random) -> dict[str, Any]:
    choice = rng.randrange(3)
    if choice == 0:
        return {"prefix": "".join(rng.choices(string.ascii_letters + "!?$%", k=rng.randint(1, 5)))}
    if choice == 1:
        return {"moderation": {"spam_max_messages": rng.randint(2, 20)}}
    return {"welcome": {"message": f"Hello {{user}} #{rng.randrange(10**9)}"}}


async def main(args: argparse.Namespace) -> None:
    engine = create_engine(to_sqlalchemy_url(args.database_url), pool_size=2)
    side = build_writing_side(engine, redis_url=args.redis_url)
    rng = random.Random(args.seed)
    guilds = [int(g) for g in args.guild]
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    deadline = time.monotonic() + args.duration
    emit(event="ready")
    while not stop.is_set() and time.monotonic() < deadline:
        gid = rng.choice(guilds)
        try:
            async with asyncio.timeout(10):
                result = await side.writer.patch(gid, random_patch(rng), actor=args.actor)
            if result.changed:
                emit(event="ack", guild=str(gid), version=result.current.version)
        except Exception as exc:
            emit(event="write_error", guild=str(gid), error=repr(exc)[:200])
            await asyncio.sleep(0.1)
        await asyncio.sleep(rng.expovariate(args.rate))
    emit(event="done")
    await side.close()
    await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--redis-url")
    parser.add_argument("--guild", action="append", required=True)
    parser.add_argument("--rate", type=float, default=10.0, help="writes per second")
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--actor", default="writer")
    asyncio.run(main(parser.parse_args()))
