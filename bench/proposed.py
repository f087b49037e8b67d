"""Read paths proposed for src/guildkit/settings/store.py, measured here next to the current one.

Not used by guildkit; they exist so results.md can show what a change would buy before anyone
makes it. See the "What limits it" notes in results.md.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

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

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)
        self._read_engine = engine.execution_options(isolation_level="AUTOCOMMIT")

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
    (SQLAlchemy only lends the connection), so no Core compile/result machinery per read."""

    async def get(self, guild_id: int) -> VersionedSettings:
        for attempt in (0, 1):
            try:
                async with self._read_engine.connect() as conn:
                    raw = await conn.get_raw_connection()
                    row = await raw.driver_connection.fetchrow(GET_ONE_SQL, guild_id)  # type: ignore[union-attr]
                break
            except DBAPIError as exc:
                if attempt or not exc.connection_invalidated:
                    raise
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
