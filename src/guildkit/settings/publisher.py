"""After-commit invalidation: tombstone then PUBLISH, bounded, never failing the caller (§2.2)."""

from __future__ import annotations

import asyncio
import logging

from guildkit.settings.redis_cache import RedisSettingsCache
from guildkit.settings.types import ChangeSignal

log = logging.getLogger(__name__)


class InvalidationPublisher:
    """Best-effort fast path. PostgreSQL's NOTIFY (sent inside the write transaction) and the
    readers' catch-up cover whatever this fails to deliver, so failure is logged, not raised."""

    def __init__(self, l2: RedisSettingsCache | None, *, budget_seconds: float = 0.25) -> None:
        self._l2 = l2
        self._budget = budget_seconds
        self._failing = False
        self.published = 0
        self.failures = 0

    async def publish(self, signal: ChangeSignal) -> bool:
        if self._l2 is None:
            return False
        try:
            async with asyncio.timeout(self._budget):
                await self._l2.tombstone_and_publish(signal)
        except Exception as exc:  # RedisUnavailable, TimeoutError, or anything: never fail
            # the write, which PostgreSQL has already committed (§2.2).
            self.failures += 1
            # One warning per outage, not one per write: an outage can last for thousands.
            log.log(
                logging.DEBUG if self._failing else logging.WARNING,
                "settings invalidation for guild %s v%s not published to Redis (%s); "
                "readers pick changes up through NOTIFY or catch-up until Redis is back",
                signal.guild_id,
                signal.version,
                exc,
            )
            self._failing = True
            return False
        self.published += 1
        if self._failing:
            log.warning("settings invalidations reach Redis again")
            self._failing = False
        return True
