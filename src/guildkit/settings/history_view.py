"""History entries in the API's document shape (DESIGN §7), shared by the CLI and dashboard."""

from __future__ import annotations

from typing import Any

from guildkit.settings.merge_patch import json_diff
from guildkit.settings.types import HistoryEntry


def history_document(entry: HistoryEntry) -> dict[str, Any]:
    return {
        "version": entry.version,
        "change_seq": entry.change_seq,
        "actor": entry.actor,
        "at": entry.at.isoformat(),
        "diff": json_diff(entry.before, entry.after),
    }
