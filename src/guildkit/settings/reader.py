"""The read path of a bot process: L1 (in-process) → L2 (Redis) → PostgreSQL (DESIGN §2.3).

Version fencing: for every guild this process holds, the reader keeps the highest version it knows
to be committed (its *floor*), raised by change signals, by tombstones seen in Redis and by loads.
A value is served from L1 only while its version reaches the floor, and a load is installed only
if it reaches the floor too, so an old value can never be installed over a newer one however the
loads, signals and Redis interleave. Redis is consulted only for guilds whose floor is known: for
any other guild an old snapshot in Redis would be indistinguishable from the truth, so those go to
PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import gc
import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from guildkit.settings.errors import SettingsUnavailable
from guildkit.settings.model import GuildSettings
from guildkit.settings.redis_cache import (
    CachedTombstone,
    CachedValue,
    RedisSettingsCache,
    RedisUnavailable,
)
from guildkit.settings.types import VersionedSettings

log = logging.getLogger(__name__)

DB_ERRORS = (OperationalError, DBAPIError, PoolTimeoutError, OSError, TimeoutError)


class Tier(enum.Enum):
    L1 = "l1"
    L2 = "l2"
    DB = "db"
    STALE = "stale"  # every tier failed; the last value this process held, possibly outdated


@dataclass(frozen=True, slots=True)
class SettingsRead:
    guild_id: int
    version: int
    settings: GuildSettings
    tier: Tier


class SettingsSource(Protocol):
    """Where fills come from: the SettingsStore (tests may wrap it to force interleavings)."""

    async def get(self, guild_id: int) -> VersionedSettings: ...

    async def get_many(self, guild_ids: Iterable[int]) -> dict[int, VersionedSettings]: ...


@dataclass
class ReadStats:
    """Plain counters: cheaper on the hot path than metric objects; exported at scrape time."""

    l1_hits: int = 0
    l2_hits: int = 0
    db_reads: int = 0
    stale_reads: int = 0
    fenced_loads: int = 0
    invalidations: int = 0


class _Slot:
    """What this process knows of one guild. `settings is None` means a fence without data."""

    __slots__ = ("expires_at", "floor", "hit", "settings", "version")

    def __init__(self, floor: int) -> None:
        self.settings: GuildSettings | None = None
        self.version = -1
        self.floor = floor
        self.expires_at = 0.0
        self.hit: SettingsRead | None = None


class SettingsReader:
    def __init__(
        self,
        source: SettingsSource,
        l2: RedisSettingsCache | None = None,
        *,
        l1_ttl_seconds: float = 300.0,
        max_load_attempts: int = 3,
        db_backoff_seconds: float = 1.0,
        db_deadline_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._l2 = l2
        self._ttl = l1_ttl_seconds
        self._attempts = max_load_attempts
        self._db_backoff = db_backoff_seconds
        self._db_deadline = db_deadline_seconds
        self._db_retry_at = 0.0
        self._clock = clock
        self._slots: dict[int, _Slot] = {}
        self._inflight: dict[int, asyncio.Task[SettingsRead]] = {}
        self._background: set[asyncio.Task[object]] = set()
        self.stats = ReadStats()

    # -- reads ------------------------------------------------------------------------------

    async def get(self, guild_id: int) -> SettingsRead:
        slot = self._slots.get(guild_id)
        if (
            slot is not None
            and slot.hit is not None
            and slot.version >= slot.floor
            and slot.expires_at > self._clock()
        ):
            self.stats.l1_hits += 1
            return slot.hit
        task = self._inflight.get(guild_id)
        if task is None:
            # Single flight: concurrent readers of one guild share one load.
            task = asyncio.get_running_loop().create_task(self._load(guild_id))
            self._inflight[guild_id] = task
            task.add_done_callback(lambda done: self._forget_inflight(guild_id, done))
        # Shielded, so a reader that gives up does not cancel the load others are waiting on.
        return await asyncio.shield(task)

    async def warm(self, guild_ids: Iterable[int]) -> int:
        """Load every listed guild not already fresh in L1 with one PostgreSQL query."""
        now = self._clock()
        missing = [
            gid
            for gid in dict.fromkeys(guild_ids)
            if not (
                (slot := self._slots.get(gid))
                and slot.hit
                and slot.expires_at > now
                and slot.version >= slot.floor
            )
        ]
        if not missing:
            return 0
        # A warm-up creates ~10 long-lived objects per guild, and the cyclic collector would
        # rescan them again and again while they are made. Pause it for the load only; no
        # gc.freeze(): that would also pin whatever cyclic garbage exists at that moment.
        collecting = gc.isenabled()
        gc.disable()
        try:
            loaded = await self._source.get_many(missing)
            installed = sum(1 for value in loaded.values() if self._install(value) is not None)
        finally:
            if collecting:
                gc.enable()
        self.stats.db_reads += len(loaded)
        return installed

    def cached_version(self, guild_id: int) -> int | None:
        slot = self._slots.get(guild_id)
        return slot.version if slot is not None and slot.settings is not None else None

    def version_floor(self, guild_id: int) -> int | None:
        """The newest version known for a guild this process holds, or None if it holds none."""
        return self._floor(guild_id)

    def known_guilds(self) -> int:
        return len(self._slots)

    # -- invalidation -----------------------------------------------------------------------

    def note_version(self, guild_id: int, version: int) -> bool:
        """Version `version` of the guild is committed; returns True if that fenced anything.

        Idempotent and order-free: signals may arrive late, twice, or through several paths.
        """
        slot = self._slots.get(guild_id)
        if slot is None:
            if guild_id not in self._inflight:
                return False  # nothing held: the next read goes to PostgreSQL anyway
            slot = self._slots[guild_id] = _Slot(version)
            self.stats.invalidations += 1
            return True
        if version <= slot.floor:
            return False
        slot.floor = version
        self.stats.invalidations += 1
        return slot.version < version

    def forget(self, guild_id: int) -> None:
        """Drop a guild this process no longer serves (it left the guild)."""
        if guild_id not in self._inflight:
            self._slots.pop(guild_id, None)

    # -- internals --------------------------------------------------------------------------

    def _forget_inflight(self, guild_id: int, done: asyncio.Task[SettingsRead]) -> None:
        if self._inflight.get(guild_id) is done:
            del self._inflight[guild_id]
        if not done.cancelled():
            done.exception()  # consumed here so an unawaited failure is not logged as lost

    def _floor(self, guild_id: int) -> int | None:
        slot = self._slots.get(guild_id)
        return slot.floor if slot is not None else None

    async def _load(self, guild_id: int) -> SettingsRead:
        for attempt in range(self._attempts):
            floor = self._floor(guild_id)
            if floor is not None and self._l2 is not None:
                from_l2 = await self._from_l2(guild_id, floor)
                if from_l2 is not None:
                    return from_l2
            if self._clock() < self._db_retry_at and self._holds_data(guild_id):
                # PostgreSQL just failed: don't queue every read behind a dead or hung server.
                return self._stale_or_raise(guild_id, None)
            try:
                # Well inside the 5 s staleness bound: an unresponsive PostgreSQL must not hold
                # every message of this guild for the driver's 10 s command timeout.
                async with asyncio.timeout(self._db_deadline):
                    value = await self._source.get(guild_id)
            except DB_ERRORS as exc:
                self._db_retry_at = self._clock() + self._db_backoff
                return self._stale_or_raise(guild_id, exc)
            self._db_retry_at = 0.0
            self.stats.db_reads += 1
            read = self._install(value, tier=Tier.DB)
            if read is not None:
                self._fill_l2(value)
                return read
            # A newer version was signalled while we read; it is committed, so read again.
            self.stats.fenced_loads += 1
            log.debug("guild %s: load of v%s fenced (attempt %s)", guild_id, value.version, attempt)
        # Writes keep landing faster than we read: serve what PostgreSQL just gave us, which is
        # at most a few writes old, without installing it.
        return SettingsRead(guild_id, value.version, value.settings, Tier.DB)

    async def _from_l2(self, guild_id: int, floor: int) -> SettingsRead | None:
        assert self._l2 is not None
        try:
            cached = await self._l2.get(guild_id)
        except RedisUnavailable:
            return None
        if isinstance(cached, CachedTombstone):
            self.note_version(guild_id, cached.version)
            return None
        if isinstance(cached, CachedValue) and cached.version >= floor:
            read = self._install(
                VersionedSettings(guild_id, cached.version, cached.settings), tier=Tier.L2
            )
            if read is not None:
                self.stats.l2_hits += 1
                return read
        return None

    def _install(self, value: VersionedSettings, tier: Tier = Tier.DB) -> SettingsRead | None:
        """Install a loaded value in L1 unless something newer is known; returns the read."""
        slot = self._slots.get(value.guild_id)
        if slot is None:
            slot = self._slots[value.guild_id] = _Slot(value.version)
        if value.version < slot.floor or value.version < slot.version:
            return None
        slot.floor = value.version
        slot.version = value.version
        slot.settings = value.settings
        slot.expires_at = self._clock() + self._ttl * random.uniform(0.9, 1.0)
        slot.hit = SettingsRead(value.guild_id, value.version, value.settings, Tier.L1)
        return SettingsRead(value.guild_id, value.version, value.settings, tier)

    def _fill_l2(self, value: VersionedSettings) -> None:
        if self._l2 is None or not self._l2.available:
            return
        task = asyncio.get_running_loop().create_task(self._fill_l2_now(value))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _fill_l2_now(self, value: VersionedSettings) -> None:
        assert self._l2 is not None
        # The cache is optional; PostgreSQL already answered.
        with contextlib.suppress(RedisUnavailable):
            await self._l2.fill(value.guild_id, value.version, value.settings)

    def _holds_data(self, guild_id: int) -> bool:
        slot = self._slots.get(guild_id)
        return slot is not None and slot.settings is not None

    def _stale_or_raise(self, guild_id: int, exc: BaseException | None) -> SettingsRead:
        slot = self._slots.get(guild_id)
        if slot is None or slot.settings is None:
            raise SettingsUnavailable(
                f"settings of guild {guild_id} are unavailable: PostgreSQL failed ({exc!r}) "
                "and this process holds no earlier copy"
            ) from exc
        self.stats.stale_reads += 1
        if exc is not None:
            log.warning(
                "guild %s: PostgreSQL unreachable (%r); serving held version %s",
                guild_id,
                exc,
                slot.version,
            )
        return SettingsRead(guild_id, slot.version, slot.settings, Tier.STALE)

    async def aclose(self) -> None:
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
