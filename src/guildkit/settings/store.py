"""The settings store: PostgreSQL reads and the one write transaction of DESIGN §2.1.

Writes are serialised by one transaction-scoped advisory lock, taken before the change sequence,
so `change_seq` values become visible in the order they were handed out and the catch-up cursor
of every reader can advance past any value it has seen without skipping a transaction in flight.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    Text,
    bindparam,
    cast,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.expression import any_

from guildkit.db.schema import change_seq, guild_settings, settings_history
from guildkit.settings.errors import VersionConflict, VersionNotFound
from guildkit.settings.merge_patch import apply_merge_patch
from guildkit.settings.model import GuildSettings
from guildkit.settings.types import (
    SIGNAL_CHANNEL_PG,
    ChangeSignal,
    HistoryEntry,
    VersionedSettings,
    WriteResult,
)
from guildkit.settings.validation import validate_settings

WRITE_LOCK_KEY: Final = 7402311191
MAX_HISTORY_PAGE: Final = 1000  # the CLI's --limit maximum
MAX_VERSION: Final = 2**31 - 1
_GS = guild_settings.c
_ROW_COLUMNS = (
    _GS.guild_id,
    cast(_GS.settings, Text).label("settings_json"),
    _GS.version,
    _GS.change_seq,
    _GS.updated_at,
    _GS.updated_by,
)
_GET_MANY = select(*_ROW_COLUMNS).where(
    _GS.guild_id == any_(bindparam("ids", type_=ARRAY(BigInteger)))
)
_GET_ONE = select(*_ROW_COLUMNS).where(_GS.guild_id == bindparam("gid"))


class ParsedSettingsCache:
    """Parsed documents by their JSON text, the least recently used going first.

    Many guilds share a document (the defaults above all), and GuildSettings is immutable, so
    one parsed instance serves them all; this keeps a 100k-guild warm-up cheap. But every edit
    makes a new text that is never asked for again once superseded, so the cache is bounded in
    entries *and* in text: a count alone let it hold thousands of dead versions (~4 KB each in
    the chaos campaign, up to ~250 KB for a maximal document). Each process keeps every guild's
    current copy in its own cache anyway (the reader's L1); this one only needs room for the
    documents guilds share.
    """

    def __init__(self, *, max_entries: int = 256, max_chars: int = 1_000_000) -> None:
        self.max_entries = max_entries
        self.max_chars = max_chars
        self._parsed: OrderedDict[str, GuildSettings] = OrderedDict()
        self._chars = 0

    def __call__(self, settings_json: str) -> GuildSettings:
        parsed = self._parsed.get(settings_json)
        if parsed is not None:
            self._parsed.move_to_end(settings_json)
            return parsed
        parsed = GuildSettings.model_validate_json(settings_json)
        if len(settings_json) <= self.max_chars:
            self._parsed[settings_json] = parsed
            self._chars += len(settings_json)
            while len(self._parsed) > self.max_entries or self._chars > self.max_chars:
                oldest, _ = self._parsed.popitem(last=False)
                self._chars -= len(oldest)
        return parsed

    def __len__(self) -> int:
        return len(self._parsed)

    @property
    def chars(self) -> int:
        return self._chars

    def cache_clear(self) -> None:
        self._parsed.clear()
        self._chars = 0


_parse_settings = ParsedSettingsCache()


def _row_to_versioned(row: Any) -> VersionedSettings:
    return VersionedSettings(
        guild_id=row.guild_id,
        version=row.version,
        settings=_parse_settings(row.settings_json),
        change_seq=row.change_seq,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


class SettingsStore:
    """Reads and writes guild settings in PostgreSQL. Knows nothing of caches or Redis."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        read_engine: AsyncEngine | None = None,
        lock_timeout_ms: int = 5000,
    ) -> None:
        self._engine = engine
        # Reads may use a cheaper engine (guildkit.db.engine.create_read_engine); writes never.
        self._read_engine = read_engine or engine
        self._retry_reads = read_engine is not None
        self._lock_timeout_ms = lock_timeout_ms

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    async def _read(self, statement: Any, params: dict[str, Any] | None = None) -> list[Any]:
        for attempt in (0, 1):
            try:
                async with self._read_engine.connect() as conn:
                    return list((await conn.execute(statement, params or {})).all())
            except DBAPIError as exc:
                # Without pre-ping, a connection that died with a restarted server fails once;
                # the pool has then dropped all such connections, so one retry is enough.
                if attempt or not (self._retry_reads and exc.connection_invalidated):
                    raise
        raise AssertionError("unreachable")

    async def get(self, guild_id: int) -> VersionedSettings:
        rows = await self._read(_GET_ONE, {"gid": guild_id})
        return _row_to_versioned(rows[0]) if rows else VersionedSettings.defaults(guild_id)

    async def get_many(self, guild_ids: Iterable[int]) -> dict[int, VersionedSettings]:
        """Every requested guild in one query; guilds without a row get the defaults."""
        ids = list(dict.fromkeys(guild_ids))
        if not ids:
            return {}
        rows = await self._read(_GET_MANY, {"ids": ids})
        found = {row.guild_id: _row_to_versioned(row) for row in rows}
        return {gid: found.get(gid) or VersionedSettings.defaults(gid) for gid in ids}

    async def patch(
        self,
        guild_id: int,
        patch: dict[str, Any],
        *,
        actor: str,
        expected_version: int | None = None,
    ) -> WriteResult:
        """Apply a JSON Merge Patch (RFC 7396) to the guild's settings in one transaction."""
        return await self._write(
            guild_id, actor, expected_version, lambda current, _: apply_merge_patch(current, patch)
        )

    async def replace(
        self,
        guild_id: int,
        document: dict[str, Any],
        *,
        actor: str,
        expected_version: int | None = None,
    ) -> WriteResult:
        return await self._write(guild_id, actor, expected_version, lambda _c, _h: document)

    async def revert(
        self,
        guild_id: int,
        version: int,
        *,
        actor: str,
        expected_version: int | None = None,
    ) -> WriteResult:
        """Write a new version whose content is that of `version`."""

        def content_of(_current: dict[str, Any], history: dict[int, dict[str, Any]]) -> Any:
            if version == 0:
                return GuildSettings().to_json()
            if version not in history:
                raise VersionNotFound(guild_id, version)
            return history[version]

        return await self._write(guild_id, actor, expected_version, content_of, revert_to=version)

    async def history(
        self, guild_id: int, *, limit: int = 50, before_version: int | None = None
    ) -> list[HistoryEntry]:
        """Newest first; `limit` is clamped to 1..MAX_HISTORY_PAGE."""
        h = settings_history.c
        query = select(settings_history).where(h.guild_id == guild_id)
        if before_version is not None:
            if before_version <= 1:
                return []
            # Versions are INTEGER: a larger bound is "no bound", not a database error.
            if before_version <= MAX_VERSION:
                query = query.where(h.version < before_version)
        query = query.order_by(h.version.desc()).limit(max(1, min(limit, MAX_HISTORY_PAGE)))
        rows = await self._read(query)
        return [
            HistoryEntry(
                guild_id=r.guild_id,
                version=r.version,
                change_seq=r.change_seq,
                actor=r.actor,
                at=r.at,
                before=r.before,
                after=r.after,
            )
            for r in rows
        ]

    async def changes_since(self, cursor: int, *, limit: int = 10000) -> list[ChangeSignal]:
        """Each guild's latest change with `change_seq > cursor`, oldest first (the catch-up)."""
        query = (
            select(_GS.guild_id, _GS.version, _GS.change_seq, _GS.updated_at)
            .where(_GS.change_seq > cursor)
            .order_by(_GS.change_seq)
            .limit(limit)
        )
        rows = await self._read(query)
        return [
            ChangeSignal(r.guild_id, r.version, r.change_seq, r.updated_at.timestamp())
            for r in rows
        ]

    async def first_commit_after(self, cursor: int) -> datetime | None:
        """When the oldest change after `cursor` committed (None: nothing after it)."""
        h = settings_history.c
        rows = await self._read(
            select(h.at).where(h.change_seq > cursor).order_by(h.change_seq).limit(1)
        )
        return rows[0][0] if rows else None

    async def latest_change_seq(self) -> int:
        rows = await self._read(select(func.coalesce(func.max(_GS.change_seq), 0)))
        return int(rows[0][0] or 0)

    async def _write(
        self,
        guild_id: int,
        actor: str,
        expected_version: int | None,
        compute: Callable[[dict[str, Any], dict[int, dict[str, Any]]], Any],
        *,
        revert_to: int | None = None,
    ) -> WriteResult:
        async with self._engine.begin() as conn:
            await conn.execute(text(f"SET LOCAL lock_timeout = {int(self._lock_timeout_ms)}"))
            await conn.execute(select(func.pg_advisory_xact_lock(WRITE_LOCK_KEY)))
            row = (
                await conn.execute(
                    select(*_ROW_COLUMNS).where(_GS.guild_id == guild_id).with_for_update()
                )
            ).first()
            current = _row_to_versioned(row) if row else VersionedSettings.defaults(guild_id)
            if expected_version is not None and expected_version != current.version:
                raise VersionConflict(expected_version, current.version)
            history = await self._history_documents(conn, guild_id, revert_to)
            before = current.settings.to_json()
            after_settings = validate_settings(compute(before, history))
            if after_settings == current.settings:
                return WriteResult(current=current, signal=None)
            written = await self._commit_version(conn, current, after_settings, actor, row is None)
        assert written.change_seq
        return WriteResult(
            current=written,
            signal=ChangeSignal(
                guild_id,
                written.version,
                written.change_seq,
                written.updated_at.timestamp() if written.updated_at else None,
            ),
        )

    @staticmethod
    async def _history_documents(
        conn: AsyncConnection, guild_id: int, version: int | None
    ) -> dict[int, dict[str, Any]]:
        if version is None or version == 0:
            return {}
        h = settings_history.c
        row = (
            await conn.execute(
                select(h.version, h.after).where(h.guild_id == guild_id, h.version == version)
            )
        ).first()
        return {row.version: row.after} if row else {}

    @staticmethod
    async def _commit_version(
        conn: AsyncConnection,
        current: VersionedSettings,
        settings: GuildSettings,
        actor: str,
        create: bool,
    ) -> VersionedSettings:
        seq = int(await conn.scalar(select(change_seq.next_value())) or 0)
        version = current.version + 1
        document = settings.to_json()
        values = {
            "settings": document,
            "version": version,
            "change_seq": seq,
            "updated_by": actor,
            # The clock now, not the transaction's start: the write may have queued behind the
            # advisory lock, and readers measure commit-to-applied lag from this time.
            "updated_at": func.clock_timestamp(),
        }
        if create:
            statement: Any = insert(guild_settings).values(guild_id=current.guild_id, **values)
        else:
            statement = (
                update(guild_settings).where(_GS.guild_id == current.guild_id).values(**values)
            )
        updated_at = await conn.scalar(statement.returning(_GS.updated_at))
        await conn.execute(
            insert(settings_history).values(
                guild_id=current.guild_id,
                version=version,
                change_seq=seq,
                actor=actor,
                at=updated_at,
                before=current.settings.to_json(),
                after=document,
            )
        )
        signal = ChangeSignal(current.guild_id, version, seq, updated_at.timestamp())
        await conn.execute(select(func.pg_notify(SIGNAL_CHANNEL_PG, signal.to_json())))
        return VersionedSettings(
            guild_id=current.guild_id,
            version=version,
            settings=settings,
            change_seq=seq,
            updated_at=updated_at,
            updated_by=actor,
        )
