"""DB-first bulk start (DESIGN §2.7): warm the settings of the guilds a process serves.

GUILD_CREATE arrives once per guild, in bursts of thousands at start and after a reconnect.
Ids are collected and flushed after a short quiet period (or when a batch fills), one
PostgreSQL query per batch via `SettingsReader.warm`, never a query per guild and never Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from guildkit.settings.reader import DB_ERRORS, SettingsReader

log = logging.getLogger(__name__)


class GuildWarmer:
    def __init__(
        self,
        reader: SettingsReader,
        *,
        debounce: float = 0.1,
        batch_size: int = 1000,
        retry_after: float = 2.0,
    ) -> None:
        self._reader = reader
        self._debounce = debounce
        self._batch_size = batch_size
        self._retry_after = retry_after
        self._pending: dict[int, None] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        self.warmed = 0

    def add(self, guild_ids: list[int] | tuple[int, ...] | set[int]) -> None:
        for gid in guild_ids:
            self._pending[gid] = None
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="settings-warmup")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            # Debounce: keep collecting until the burst pauses or a batch is full.
            while len(self._pending) < self._batch_size:
                self._wake.clear()
                try:
                    async with asyncio.timeout(self._debounce):
                        await self._wake.wait()
                except TimeoutError:
                    break
            self._wake.clear()
            await self._flush()

    async def _flush(self) -> None:
        while self._pending:
            batch = list(self._pending)[: self._batch_size]
            try:
                installed = await self._reader.warm(batch)
            except DB_ERRORS as exc:
                # Reads still load one guild at a time on demand; retry the bulk load later.
                log.warning(
                    "settings warm-up of %s guilds failed (PostgreSQL unreachable?): %r; "
                    "retrying in %.0fs",
                    len(batch),
                    exc,
                    self._retry_after,
                )
                await asyncio.sleep(self._retry_after)
                continue
            for gid in batch:
                self._pending.pop(gid, None)
            self.batches += 1
            self.warmed += installed
            log.info("settings warm-up: %s guilds in one query (%s loaded)", len(batch), installed)
