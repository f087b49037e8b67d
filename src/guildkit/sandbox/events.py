"""What the state hands to the gateway: one dispatch, and who may see it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class GatewayEvent:
    name: str
    data: dict[str, Any]
    # None: not tied to a guild (DMs), which Discord delivers on shard 0.
    guild_id: int | None
    # The intent a session needs to receive the event; 0 means always delivered.
    intent: int
    # True for messages whose content is withheld from sessions lacking MESSAGE_CONTENT.
    content_gated: bool = False
