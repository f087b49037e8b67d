"""Measure a reader process's RSS while it warms more and more guilds; prints one JSON line."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys

from bench.env import guild_id
from guildkit.config import to_sqlalchemy_url
from guildkit.db.engine import create_engine
from guildkit.settings.reader import SettingsReader
from guildkit.settings.store import SettingsStore


def rss_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def main(args: argparse.Namespace) -> None:
    engine = create_engine(to_sqlalchemy_url(args.database_url), pool_size=1)
    store = SettingsStore(engine)
    reader = SettingsReader(store)
    await SettingsReader(store).warm([guild_id(0)])  # imports, connection, statement cache
    gc.collect()
    out = {"0": rss_kb()}
    for size in sorted(args.size):
        await reader.warm(guild_id(i) for i in range(size))
        gc.collect()
        out[str(size)] = rss_kb()
    sys.stdout.write(json.dumps({"event": "memory", "rss_kb": out}) + "\n")
    sys.stdout.flush()
    await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--size", type=int, action="append", required=True)
    asyncio.run(main(parser.parse_args()))
