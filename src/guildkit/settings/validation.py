"""Turn an arbitrary JSON document into a GuildSettings, or a field-level error report."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from guildkit.settings.errors import SettingsValidationError
from guildkit.settings.model import GuildSettings


def validate_settings(document: Any) -> GuildSettings:
    if not isinstance(document, dict):
        raise SettingsValidationError(
            [{"loc": [], "msg": "settings must be a JSON object", "type": "object_type"}]
        )
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
