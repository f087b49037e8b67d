"""DB-first bulk start: a burst of GUILD_CREATEs becomes one query per batch."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from guildkit.bot.warmup import GuildWarmer
from guildkit.settings.reader import SettingsReader
from guildkit.settings.types import VersionedSettings
from tests.bot.harness import eventually


class CountingSource:
    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.single = 0

    async def get(self, guild_id: int) -> VersionedSettings:
        self.single += 1
        return VersionedSettings.defaults(guild_id)

    async def get_many(self, guild_ids: Iterable[int]) -> dict[int, VersionedSettings]:
        ids = list(guild_ids)
        self.batches.append(ids)
        return {g: VersionedSettings.defaults(g) for g in ids}


async def test_burst_is_debounced_into_batches() -> None:
    source = CountingSource()
    reader = SettingsReader(source)
    warmer = GuildWarmer(reader, debounce=0.05, batch_size=100)
    warmer.start()
    try:
        for gid in range(1, 251):
            warmer.add([gid])
            if gid % 10 == 0:
                await asyncio.sleep(0)  # GUILD_CREATEs arrive interleaved with other work
        await eventually(lambda: _done(warmer), within=5)
    finally:
        await warmer.stop()
    assert [len(b) for b in source.batches] == [100, 100, 50]
    assert source.single == 0
    read = await reader.get(7)
    assert read.tier.value == "l1" and source.single == 0


async def _done(warmer: GuildWarmer) -> bool | None:
    return True if warmer.warmed >= 250 else None
