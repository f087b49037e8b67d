"""Read paths proposed for src/guildkit/settings/store.py, measured here next to the current one.

Not used by guildkit; they exist so results.md can show what a change would buy before anyone
makes it. See the "What limits it" notes in results.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from guildkit.settings.reader import SettingsRead, SettingsReader, SettingsSource, Tier
from guildkit.settings.redis_cache import (
    CachedEntry,
    CachedTombstone,
    CachedValue,
    RedisSettingsCache,
    RedisUnavailable,
    decode,
    key_for,
)
from guildkit.settings.store import _GET_ONE, SettingsStore, _parse_settings, _row_to_versioned
from guildkit.settings.types import VersionedSettings

GET_ONE_SQL = (
    "SELECT guild_id, settings::text AS settings_json, version, change_seq, updated_at, "
    "updated_by FROM guild_settings WHERE guild_id = $1"
)


class AutocommitReadStore(SettingsStore):
    """Proposal A: single-row reads in AUTOCOMMIT mode (no BEGIN/ROLLBACK round trips) on an
    engine without pool_pre_ping (whose ping is itself BEGIN; SELECT; ROLLBACK on asyncpg), with
    one retry when SQLAlchemy reports the pooled connection died (e.g. PostgreSQL restarted)."""

    def __init__(self, engine: AsyncEngine, read_engine: AsyncEngine | None = None) -> None:
        super().__init__(engine)
        self._read_engine = (read_engine or engine).execution_options(isolation_level="AUTOCOMMIT")

    async def get(self, guild_id: int) -> VersionedSettings:
        for attempt in (0, 1):
            try:
                async with self._read_engine.connect() as conn:
                    row = (await conn.execute(_GET_ONE, {"gid": guild_id})).first()
                break
            except DBAPIError as exc:
                if attempt or not exc.connection_invalidated:
                    raise
        return _row_to_versioned(row) if row else VersionedSettings.defaults(guild_id)


class DriverReadStore(AutocommitReadStore):
    """Proposal B: as A, but the SELECT goes straight to the asyncpg connection the pool holds
    (SQLAlchemy only lends the connection), so no Core compile/result machinery per read.
    asyncpg's own errors are not wrapped by SQLAlchemy here, so a dead connection is
    invalidated by hand and the read retried once; a second failure surfaces as an OSError
    (which the reader's DB_ERRORS already covers)."""

    async def get(self, guild_id: int) -> VersionedSettings:
        row: Any = None
        for attempt in (0, 1):
            async with self._read_engine.connect() as conn:
                raw = await conn.get_raw_connection()
                try:
                    row = await raw.driver_connection.fetchrow(GET_ONE_SQL, guild_id)  # type: ignore[union-attr]
                except (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError) as exc:
                    await conn.invalidate(exc)
                    if attempt:
                        raise ConnectionError(f"PostgreSQL read failed: {exc!r}") from exc
                    continue
            break
        if row is None:
            return VersionedSettings.defaults(guild_id)
        return VersionedSettings(
            guild_id=row["guild_id"],
            version=row["version"],
            settings=_parse_settings(row["settings_json"]),
            change_seq=row["change_seq"],
            updated_at=row["updated_at"],
            updated_by=row["updated_by"],
        )


_VERSION_PREFIX = re.compile(rb'^\{"version":(\d+),"settings":')


@dataclass(frozen=True, slots=True)
class SameVersion:
    """Redis holds a value of exactly the version this process already holds."""

    version: int


class VersionPeekingCache(RedisSettingsCache):
    """Proposal D, cache side: read the version first and skip JSON + model validation when it
    is the version the caller already holds (the usual L2 hit: L1 expired by TTL only). Safe with
    an untrusted Redis: whatever the rest of the bytes say, the caller serves its own copy of
    that committed version."""

    async def get_for(self, guild_id: int, held: int | None) -> CachedEntry | SameVersion | None:
        raw = await self._guarded(lambda: self.redis.get(key_for(guild_id)))
        if raw is None:
            return None
        if held is not None:
            match = _VERSION_PREFIX.match(raw.encode() if isinstance(raw, str) else raw)
            if match is not None and int(match.group(1)) == held:
                return SameVersion(held)
        return decode(raw)


class VersionPeekingReader(SettingsReader):
    """Proposal D, reader side (`_from_l2` of guildkit.settings.reader, with the peek)."""

    def __init__(self, source: SettingsSource, l2: VersionPeekingCache, **kwargs: Any) -> None:
        super().__init__(source, l2, **kwargs)
        self._peeking = l2

    async def _from_l2(self, guild_id: int, floor: int) -> SettingsRead | None:
        slot = self._slots.get(guild_id)
        held = slot.version if slot is not None and slot.settings is not None else None
        try:
            cached = await self._peeking.get_for(guild_id, held)
        except RedisUnavailable:
            return None
        if isinstance(cached, SameVersion):
            assert slot is not None and slot.settings is not None
            if cached.version < floor:
                return None
            value = VersionedSettings(guild_id, cached.version, slot.settings)
            read = self._install(value, tier=Tier.L2)
            if read is not None:
                self.stats.l2_hits += 1
            return read
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
