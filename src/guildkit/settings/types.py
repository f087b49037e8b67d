"""Value types shared by the store, the cache and the signal paths."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from guildkit.settings.model import DEFAULT_SETTINGS, MAX_SNOWFLAKE, GuildSettings

SIGNAL_CHANNEL_REDIS: Final = "config:settings"
SIGNAL_CHANNEL_PG: Final = "config_settings"


def parse_guild_id(value: object) -> int:
    """A guild id from a path, CLI argument or JSON payload, or ValueError saying what is wrong."""
    text = (
        str(value).strip() if isinstance(value, str | int) and not isinstance(value, bool) else ""
    )
    if not text.isascii() or not text.isdigit():
        raise ValueError(f"guild id must be a Discord id (digits only), got {value!r}")
    number = int(text)
    if not 0 < number <= MAX_SNOWFLAKE:
        raise ValueError(f"guild id {value!r} is out of range for a Discord id")
    return number


@dataclass(frozen=True, slots=True)
class VersionedSettings:
    """A guild's settings as committed at `version` (0: never written, the defaults)."""

    guild_id: int
    version: int
    settings: GuildSettings
    change_seq: int = 0
    updated_at: datetime | None = None
    updated_by: str | None = None

    @classmethod
    def defaults(cls, guild_id: int) -> VersionedSettings:
        return cls(guild_id=guild_id, version=0, settings=DEFAULT_SETTINGS)

    def to_document(self) -> dict[str, Any]:
        """The API's document shape (DESIGN §7)."""
        return {
            "guild_id": str(self.guild_id),
            "version": self.version,
            "settings": self.settings.to_json(),
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
            "updated_by": self.updated_by,
        }


@dataclass(frozen=True, slots=True)
class ChangeSignal:
    """ "Guild G is now at version V, committed as change C" (DESIGN §3 wire format).

    `committed_at` (epoch seconds, PostgreSQL's clock when the row was written, just before
    commit) is optional and diagnostic only: readers measure commit-to-applied lag with it and
    ignore it when absent or malformed. It never takes part in ordering or equality.
    """

    guild_id: int
    version: int
    change_seq: int
    committed_at: float | None = field(default=None, compare=False)

    def to_json(self) -> str:
        data: dict[str, Any] = {
            "guild_id": str(self.guild_id),
            "version": self.version,
            "change_seq": self.change_seq,
        }
        if self.committed_at is not None:
            data["committed_at"] = round(self.committed_at, 6)
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> ChangeSignal:
        """Parse a signal; ValueError for anything malformed (signals cross process boundaries)."""
        try:
            data = json.loads(raw)
            signal = cls(
                guild_id=parse_guild_id(data["guild_id"]),
                version=int(data["version"]),
                change_seq=int(data["change_seq"]),
                committed_at=_optional_timestamp(data.get("committed_at")),
            )
        except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
            raise ValueError(f"malformed settings signal: {raw!r}") from exc
        if signal.version < 1 or signal.change_seq < 1:
            raise ValueError(f"malformed settings signal: {raw!r}")
        return signal


def _optional_timestamp(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What a write did: the document now current, and the signal to publish if it changed."""

    current: VersionedSettings
    signal: ChangeSignal | None

    @property
    def changed(self) -> bool:
        return self.signal is not None


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    guild_id: int
    version: int
    change_seq: int
    actor: str
    at: datetime
    before: dict[str, Any]
    after: dict[str, Any]
