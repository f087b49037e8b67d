"""Turn an arbitrary JSON document into a GuildSettings, or a field-level error report."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from guildkit.settings.errors import SettingsValidationError
from guildkit.settings.model import GuildSettings


def _nul_characters(value: Any, loc: list[Any]) -> list[dict[str, Any]]:
    # PostgreSQL's jsonb cannot store U+0000: refuse it here, naming the field, rather than
    # let the write fail in the database.
    if isinstance(value, str):
        if "\x00" in value:
            return [{"loc": loc, "msg": "must not contain NUL characters", "type": "nul_char"}]
        return []
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    return [e for key, child in items for e in _nul_characters(child, [*loc, key])]


def validate_settings(document: Any) -> GuildSettings:
    if not isinstance(document, dict):
        raise SettingsValidationError(
            [{"loc": [], "msg": "settings must be a JSON object", "type": "object_type"}]
        )
    if nul := _nul_characters(document, []):
        raise SettingsValidationError(nul)
    try:
        return GuildSettings.model_validate(document)
    except ValidationError as exc:
        raise SettingsValidationError(
            [
                {
                    "loc": list(error["loc"]),
                    "msg": _message(error),
                    "type": error["type"],
                }
                for error in exc.errors(include_url=False, include_input=False)
            ]
        ) from None


def _message(error: Any) -> str:
    message = str(error["msg"])
    # pydantic prefixes messages raised by our validators; the dashboard shows them as they are.
    return message.removeprefix("Value error, ")
