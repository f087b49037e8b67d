"""Deterministic snowflakes: the same sequence of valid-looking Discord ids on every run."""

from __future__ import annotations

DISCORD_EPOCH_MS = 1_420_070_400_000
# 2024-01-01T00:00:00Z: ids look like those of a recently created Discord object.
SANDBOX_START_MS = 1_704_067_200_000


class SnowflakeGenerator:
    """Counter-based ids; the timestamp part advances by 1 ms per id.

    Advancing the timestamp (not only the increment bits) matters: Discord shards guilds by
    `(guild_id >> 22) % shard_count`, so consecutive guilds land on different shards.
    """

    def __init__(self, start_ms: int = SANDBOX_START_MS, worker_id: int = 1) -> None:
        self._start_ms = start_ms
        self._worker_id = worker_id & 0x1F
        self._count = 0

    def next(self) -> int:
        n = self._count
        self._count += 1
        timestamp = self._start_ms - DISCORD_EPOCH_MS + n
        return (timestamp << 22) | (self._worker_id << 17) | (n & 0xFFF)


def shard_for(guild_id: int, shard_count: int) -> int:
    return (guild_id >> 22) % shard_count
