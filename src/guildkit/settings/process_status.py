"""Each reading process records its applied `change_seq` in PostgreSQL (DESIGN §2.9), so the
dashboard can say whether an edit is live everywhere, with or without Redis."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from guildkit.db.schema import bot_processes
from guildkit.settings.listener import ChangeListener
from guildkit.settings.reader import DB_ERRORS

log = logging.getLogger(__name__)
_BP = bot_processes.c


@dataclass(frozen=True, slots=True)
class ProcessStatus:
    instance_id: str
    shard_ids: tuple[int, ...]
    shard_count: int
    applied_change_seq: int
    heartbeat_at: datetime
    host: str
    pid: int


class ProcessRegistry:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def record(
        self,
        instance_id: str,
        *,
        shard_ids: tuple[int, ...],
        shard_count: int,
        applied_change_seq: int,
    ) -> None:
        statement = insert(bot_processes).values(
            instance_id=instance_id,
            shard_ids=list(shard_ids),
            shard_count=shard_count,
            applied_change_seq=applied_change_seq,
            host=socket.gethostname(),
            pid=os.getpid(),
        )
        statement = statement.on_conflict_do_update(
            index_elements=[_BP.instance_id],
            set_={
                "shard_ids": statement.excluded.shard_ids,
                "shard_count": statement.excluded.shard_count,
                # Never move backwards, even if an older heartbeat lands late.
                "applied_change_seq": func.greatest(
                    _BP.applied_change_seq, statement.excluded.applied_change_seq
                ),
                "heartbeat_at": func.now(),
            },
        )
        async with self._engine.begin() as conn:
            await conn.execute(statement)

    async def remove(self, instance_id: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(delete(bot_processes).where(_BP.instance_id == instance_id))

    async def live(self, *, max_age_seconds: float = 15.0) -> list[ProcessStatus]:
        """Processes whose heartbeat is recent; older rows are crashed or stopped processes."""
        query = (
            select(bot_processes)
            .where(
                _BP.heartbeat_at
                > func.now() - func.make_interval(0, 0, 0, 0, 0, 0, max_age_seconds)
            )
            .order_by(_BP.instance_id)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            ProcessStatus(
                instance_id=r.instance_id,
                shard_ids=tuple(r.shard_ids),
                shard_count=r.shard_count,
                applied_change_seq=r.applied_change_seq,
                heartbeat_at=r.heartbeat_at,
                host=r.host,
                pid=r.pid,
            )
            for r in rows
        ]


class ProcessReporter:
    """Writes this process's heartbeat every `interval`, and promptly when the mark moves."""

    def __init__(
        self,
        registry: ProcessRegistry,
        listener: ChangeListener,
        *,
        instance_id: str,
        shard_ids: tuple[int, ...],
        shard_count: int,
        interval: float = 2.0,
        min_gap: float = 0.05,
    ) -> None:
        self._registry = registry
        self._listener = listener
        self.instance_id = instance_id
        self._shard_ids = shard_ids
        self._shard_count = shard_count
        self._interval = interval
        self._min_gap = min_gap
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def set_shards(self, shard_ids: tuple[int, ...], shard_count: int) -> None:
        """The shards became known after start (Discord recommended the count)."""
        self._shard_ids = shard_ids
        self._shard_count = shard_count
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="settings-heartbeat")

    async def stop(self, *, deregister: bool = True) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if deregister:
            with contextlib.suppress(*DB_ERRORS):
                await self._registry.remove(self.instance_id)

    async def _run(self) -> None:
        while True:
            self._listener.applied_changed.clear()
            try:
                await self._registry.record(
                    self.instance_id,
                    shard_ids=self._shard_ids,
                    shard_count=self._shard_count,
                    applied_change_seq=self._listener.applied_change_seq,
                )
            except DB_ERRORS as exc:
                log.warning("could not record process heartbeat: %r", exc)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    changed = asyncio.ensure_future(self._listener.applied_changed.wait())
                    woken = asyncio.ensure_future(self._wake.wait())
                    try:
                        await asyncio.wait({changed, woken}, return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        changed.cancel()
                        woken.cancel()
            # Coalesce bursts of changes into one write.
            await asyncio.sleep(self._min_gap)
