"""The write path every writer (dashboard, CLI) uses: commit in PostgreSQL, then invalidate."""

from __future__ import annotations

from typing import Any

from guildkit.settings.publisher import InvalidationPublisher
from guildkit.settings.store import SettingsStore
from guildkit.settings.types import WriteResult


class SettingsWriter:
    def __init__(self, store: SettingsStore, publisher: InvalidationPublisher) -> None:
        self._store = store
        self._publisher = publisher

    @property
    def store(self) -> SettingsStore:
        return self._store

    @property
    def publisher(self) -> InvalidationPublisher:
        return self._publisher

    async def patch(
        self,
        guild_id: int,
        patch: dict[str, Any],
        *,
        actor: str,
        expected_version: int | None = None,
    ) -> WriteResult:
        result = await self._store.patch(
            guild_id, patch, actor=actor, expected_version=expected_version
        )
        return await self._published(result)

    async def revert(
        self, guild_id: int, version: int, *, actor: str, expected_version: int | None = None
    ) -> WriteResult:
        result = await self._store.revert(
            guild_id, version, actor=actor, expected_version=expected_version
        )
        return await self._published(result)

    async def _published(self, result: WriteResult) -> WriteResult:
        # Only after the transaction has committed (the store returned), never inside it.
        if result.signal is not None:
            await self._publisher.publish(result.signal)
        return result
