"""Errors the settings layer raises to its callers (dashboard, CLI, bot)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class SettingsError(Exception):
    """Base of every error the settings layer raises on purpose."""


class SettingsValidationError(SettingsError):
    """The change would produce an invalid document; nothing was written.

    `errors` use FastAPI's shape (`loc`, `msg`, `type`), `loc` being the path inside the settings
    document, so a dashboard can show each message next to its field.
    """

    def __init__(self, errors: Sequence[dict[str, Any]]) -> None:
        self.errors = [dict(e) for e in errors]
        super().__init__(self.describe())

    def describe(self) -> str:
        parts = []
        for error in self.errors:
            where = ".".join(str(p) for p in error["loc"]) or "settings"
            parts.append(f"{where}: {error['msg']}")
        return "; ".join(parts)


class VersionConflict(SettingsError):
    """The caller's expected version is no longer current (someone else saved first)."""

    def __init__(self, expected: int, current: int) -> None:
        self.expected = expected
        self.current = current
        super().__init__(f"settings are at version {current}, not {expected}: reload and retry")


class VersionNotFound(SettingsError):
    """A revert named a version this guild never had."""

    def __init__(self, guild_id: int, version: int) -> None:
        super().__init__(f"guild {guild_id} has no settings version {version}")


class SettingsUnavailable(SettingsError):
    """No tier could produce a guild's settings (PostgreSQL unreachable and nothing cached)."""
