"""Test helpers for the settings layer: sources that count or pause the real PostgreSQL reads."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Literal

from sqlalchemy.exc import OperationalError

from guildkit.settings.store import SettingsStore
from guildkit.settings.types import VersionedSettings


class CountingSource:
    """The real store, counting how many reads reach PostgreSQL."""

    def __init__(self, store: SettingsStore) -> None:
        self.store = store
        self.gets = 0
        self.get_manys = 0

    async def get(self, guild_id: int) -> VersionedSettings:
        self.gets += 1
        return await self.store.get(guild_id)

    async def get_many(self, guild_ids: Iterable[int]) -> dict[int, VersionedSettings]:
        self.get_manys += 1
        return await self.store.get_many(guild_ids)


class GatedSource(CountingSource):
    """Reads PostgreSQL for real, then holds the result until the test opens the gate: the
    window in which a writer can commit and invalidate behind a slow reader's back."""

    def __init__(self, store: SettingsStore) -> None:
        super().__init__(store)
        self.read_done = asyncio.Event()
        self.gate = asyncio.Event()
        self.armed = True

    async def get(self, guild_id: int) -> VersionedSettings:
        value = await super().get(guild_id)
        if self.armed:
            self.armed = False
            self.read_done.set()
            await self.gate.wait()
        return value


class FaultySource(CountingSource):
    """The real store until the test sets `fault`: then every read fails like an unreachable
    PostgreSQL ("fail") or waits forever like a hung one ("hang")."""

    def __init__(self, store: SettingsStore) -> None:
        super().__init__(store)
        self.fault: Literal["fail", "hang"] | None = None

    async def get(self, guild_id: int) -> VersionedSettings:
        if self.fault == "fail":
            self.gets += 1
            raise OperationalError("select", {}, OSError("connection refused"))
        if self.fault == "hang":
            await asyncio.Event().wait()
        return await super().get(guild_id)
