"""The control API's own JSON for things Discord has no shape for (bot actions, message log)."""

from __future__ import annotations

from typing import Any

from guildkit.sandbox.model import Action, Message


def _sf(value: int | None) -> str | None:
    return None if value is None else str(value)


def message(msg: Message) -> dict[str, Any]:
    return {
        "id": str(msg.id),
        "channel_id": str(msg.channel_id),
        "guild_id": _sf(msg.guild_id),
        "author_id": str(msg.author_id),
        "content": msg.content,
        "embeds": msg.embeds,
        "reference_id": _sf(msg.reference_id),
        "timestamp": msg.timestamp.isoformat(),
        "deleted": msg.deleted,
        "deleted_by": _sf(msg.deleted_by),
    }


def action(a: Action) -> dict[str, Any]:
    return {
        "seq": a.seq,
        "kind": a.kind,
        "actor_id": str(a.actor_id),
        "guild_id": _sf(a.guild_id),
        "channel_id": _sf(a.channel_id),
        "message_id": _sf(a.message_id),
        "user_id": _sf(a.user_id),
        "role_id": _sf(a.role_id),
        "content": a.content,
        "reason": a.reason,
        "at": a.at.isoformat(),
    }
