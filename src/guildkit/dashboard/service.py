"""What the API and the pages do with settings; both surfaces map its outcomes to HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from guildkit.dashboard.discord_api import DiscordClient
from guildkit.dashboard.metrics import DashboardMetrics
from guildkit.dashboard.references import check_references
from guildkit.dashboard.storage import StorageUnavailable, storage
from guildkit.settings.errors import SettingsValidationError, VersionConflict, VersionNotFound
from guildkit.settings.history_view import history_document
from guildkit.settings.merge_patch import apply_merge_patch, json_diff
from guildkit.settings.process_status import ProcessRegistry, ProcessStatus
from guildkit.settings.store import SettingsStore
from guildkit.settings.types import HistoryEntry, VersionedSettings, WriteResult
from guildkit.settings.validation import validate_settings
from guildkit.settings.writer import SettingsWriter


@dataclass(frozen=True, slots=True)
class SyncStatus:
    guild_id: int
    version: int
    change_seq: int
    processes: list[ProcessStatus]

    @property
    def applied_count(self) -> int:
        return sum(1 for p in self.processes if p.applied_change_seq >= self.change_seq)

    @property
    def live(self) -> bool:
        # With no live bot process nothing serves the settings, so they are not "live".
        return bool(self.processes) and self.applied_count == len(self.processes)

    def to_json(self) -> dict[str, Any]:
        return {
            "guild_id": str(self.guild_id),
            "version": self.version,
            "change_seq": self.change_seq,
            "live": self.live,
            "processes": [
                {
                    "instance_id": p.instance_id,
                    "shard_ids": list(p.shard_ids),
                    "applied_change_seq": p.applied_change_seq,
                    "heartbeat_at": p.heartbeat_at.isoformat(),
                }
                for p in self.processes
            ],
        }


# Settings versions are PostgreSQL `integer`s. A number from a URL or form beyond that range
# must never reach a query: asyncpg refuses it with an error that reads as "PostgreSQL is down".
MAX_VERSION = 2**31 - 1


def nul_characters(document: Any) -> list[dict[str, Any]]:
    """Field errors for every string holding U+0000, which PostgreSQL's jsonb cannot store.

    The model accepts it, so without this check PostgreSQL refuses the write with an error that
    reads as an outage (a 503) instead of a 422 naming the field.
    """
    errors: list[dict[str, Any]] = []
    stack: list[tuple[list[str | int], Any]] = [([], document)]
    while stack:
        loc, value = stack.pop()
        if isinstance(value, str) and "\x00" in value:
            errors.append(
                {"loc": loc, "msg": "must not contain NUL (U+0000) characters", "type": "nul_char"}
            )
        elif isinstance(value, dict):
            for key, child in value.items():
                stack.append(([*loc, str(key)], child))
                if "\x00" in str(key):
                    stack.append(([*loc, str(key)], str(key)))
        elif isinstance(value, list):
            stack.extend(([*loc, i], child) for i, child in enumerate(value))
    return sorted(errors, key=lambda e: [str(p) for p in e["loc"]])


# One document shape for the API, the pages and the CLI.
history_json = history_document


class SettingsService:
    def __init__(
        self,
        store: SettingsStore,
        writer: SettingsWriter,
        discord: DiscordClient,
        metrics: DashboardMetrics,
        *,
        heartbeat_window_seconds: float = 15.0,
    ) -> None:
        self.store = store
        self._writer = writer
        self._discord = discord
        self._metrics = metrics
        self._heartbeat_window = heartbeat_window_seconds
        self._processes = ProcessRegistry(store.engine)

    async def get(self, guild_id: int) -> VersionedSettings:
        async with storage():
            return await self.store.get(guild_id)

    async def patch(
        self, guild_id: int, patch: dict[str, Any], *, actor: str, expected_version: int | None
    ) -> WriteResult:
        """Validate (model, then Discord references), then write through the writer.

        Raises SettingsValidationError, VersionConflict, StorageUnavailable, DiscordError.
        """
        nul_errors = nul_characters(patch)
        if nul_errors:
            self._metrics.writes.labels("invalid").inc()
            raise SettingsValidationError(nul_errors)
        current = await self.get(guild_id)
        if expected_version is not None and expected_version != current.version:
            self._metrics.writes.labels("conflict").inc()
            raise VersionConflict(expected_version, current.version)
        # Validated here on the current document so a bad id is reported before anything is
        # written; the store validates again inside its transaction against whatever is current.
        prospective = self._validated(apply_merge_patch(current.settings.to_json(), patch))
        await self._check_references(guild_id, prospective)
        return await self._write(
            self._writer.patch(guild_id, patch, actor=actor, expected_version=expected_version)
        )

    async def revert(
        self, guild_id: int, version: int, *, actor: str, expected_version: int | None
    ) -> WriteResult:
        """Raises as `patch`, and VersionNotFound for a version this guild never had."""
        if not 0 <= version <= MAX_VERSION:
            raise VersionNotFound(guild_id, version)
        target = await self.content_at(guild_id, version)
        if target is not None:
            await self._check_references(guild_id, self._validated(target))
        return await self._write(
            self._writer.revert(guild_id, version, actor=actor, expected_version=expected_version)
        )

    async def content_at(self, guild_id: int, version: int) -> dict[str, Any] | None:
        if version == 0:
            return None
        entries = await self.history(guild_id, limit=1, before_version=version + 1)
        return entries[0].after if entries and entries[0].version == version else None

    async def history(
        self, guild_id: int, *, limit: int = 50, before_version: int | None = None
    ) -> list[HistoryEntry]:
        if before_version is not None:
            if before_version <= 1:
                return []
            if before_version > MAX_VERSION:
                before_version = None
        async with storage():
            return await self.store.history(guild_id, limit=limit, before_version=before_version)

    async def changes_since(self, guild_id: int, version: int) -> list[dict[str, Any]]:
        """What changed from `version` to the current one (for a conflict explanation)."""
        current = await self.get(guild_id)
        if version >= current.version:
            return []
        if version == 0:
            before: dict[str, Any] = VersionedSettings.defaults(guild_id).settings.to_json()
        else:
            entries = await self.history(guild_id, limit=1, before_version=version + 1)
            if not entries:
                return []
            before = entries[0].after
        return json_diff(before, current.settings.to_json())

    async def sync(self, guild_id: int) -> SyncStatus:
        async with storage():
            current = await self.store.get(guild_id)
            processes = await self._processes.live(max_age_seconds=self._heartbeat_window)
        return SyncStatus(
            guild_id=guild_id,
            version=current.version,
            change_seq=current.change_seq,
            processes=processes,
        )

    def _validated(self, document: Any) -> Any:
        try:
            return validate_settings(document)
        except SettingsValidationError:
            self._metrics.writes.labels("invalid").inc()
            raise

    async def _check_references(self, guild_id: int, settings: Any) -> None:
        try:
            await check_references(self._discord, guild_id, settings)
        except SettingsValidationError:
            self._metrics.writes.labels("invalid").inc()
            raise

    async def _write(self, write: Any) -> WriteResult:
        try:
            async with storage():
                result: WriteResult = await write
        except VersionConflict:
            self._metrics.writes.labels("conflict").inc()
            raise
        except SettingsValidationError:
            self._metrics.writes.labels("invalid").inc()
            raise
        except StorageUnavailable:
            self._metrics.writes.labels("unavailable").inc()
            raise
        self._metrics.writes.labels("ok" if result.changed else "unchanged").inc()
        return result
