"""The settings pages' sections: which fields each shows, and its HTML form as a merge patch.

Each section's form carries all of its fields, so an absent checkbox means "off" and an empty
picker means "none" (a JSON null, which a merge patch turns back into the default).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from starlette.datastructures import FormData

from guildkit.settings.model import BUILTIN_COMMANDS


@dataclass(frozen=True, slots=True)
class Section:
    slug: str
    title: str
    to_patch: Callable[[FormData], dict[str, Any]]


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _flag(form: FormData, name: str) -> bool:
    return _text(form, name) in ("on", "true", "1")


def _optional_id(form: FormData, name: str) -> str | None:
    return _text(form, name).strip() or None


def _ids(form: FormData, name: str) -> list[str]:
    return [v.strip() for v in form.getlist(name) if isinstance(v, str) and v.strip()]


def _integer(form: FormData, name: str) -> int | str:
    # An unparseable number goes through as text so the model reports it next to the field.
    raw = _text(form, name).strip()
    try:
        return int(raw)
    except ValueError:
        return raw


def _lines(form: FormData, name: str) -> list[str]:
    return [line.strip() for line in _text(form, name).splitlines() if line.strip()]


def general_patch(form: FormData) -> dict[str, Any]:
    return {
        "prefix": _text(form, "prefix"),
        "log_channel_id": _optional_id(form, "log_channel_id"),
        "disabled_commands": [c for c in form.getlist("disabled_commands") if isinstance(c, str)],
    }


def welcome_patch(form: FormData) -> dict[str, Any]:
    return {
        "welcome": {
            "enabled": _flag(form, "welcome.enabled"),
            "channel_id": _optional_id(form, "welcome.channel_id"),
            # Browsers submit CRLF line breaks; Discord messages use LF.
            "message": _text(form, "welcome.message").replace("\r\n", "\n"),
        },
        "auto_roles": _ids(form, "auto_roles"),
    }


def moderation_patch(form: FormData) -> dict[str, Any]:
    return {
        "moderation": {
            "anti_link": _flag(form, "moderation.anti_link"),
            "anti_spam": _flag(form, "moderation.anti_spam"),
            "spam_max_messages": _integer(form, "moderation.spam_max_messages"),
            "spam_window_seconds": _integer(form, "moderation.spam_window_seconds"),
            "blocked_words": _lines(form, "moderation.blocked_words"),
            "exempt_role_ids": _ids(form, "moderation.exempt_role_ids"),
        }
    }


def commands_patch(form: FormData) -> dict[str, Any]:
    names = [n if isinstance(n, str) else "" for n in form.getlist("cmd_name")]
    responses = [r if isinstance(r, str) else "" for r in form.getlist("cmd_response")]
    commands = []
    for name, response in zip(names, responses, strict=False):
        # A row with both fields empty is the blank "add one" row, or a removed command.
        if name.strip() or response.strip():
            commands.append({"name": name.strip(), "response": response.replace("\r\n", "\n")})
    return {"custom_commands": commands}


def leveling_patch(form: FormData) -> dict[str, Any]:
    return {
        "leveling": {
            "enabled": _flag(form, "leveling.enabled"),
            "announce_channel_id": _optional_id(form, "leveling.announce_channel_id"),
        }
    }


SECTIONS: Final = {
    s.slug: s
    for s in (
        Section("general", "General", general_patch),
        Section("welcome", "Welcome", welcome_patch),
        Section("moderation", "Moderation", moderation_patch),
        Section("commands", "Custom commands", commands_patch),
        Section("leveling", "Leveling", leveling_patch),
    )
}
BUILTINS: Final = BUILTIN_COMMANDS


def error_map(errors: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Validation errors keyed by dotted path (`custom_commands.2.name`) for inline display."""
    mapped: dict[str, list[str]] = {}
    for error in errors:
        key = ".".join(str(p) for p in error.get("loc", []))
        mapped.setdefault(key, []).append(str(error.get("msg", "")))
    return mapped


def leaf_paths(patch: dict[str, Any], prefix: str = "") -> list[str]:
    """The dotted paths a merge patch sets (lists and scalars are leaves)."""
    paths: list[str] = []
    for key, value in patch.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            paths.extend(leaf_paths(value, path))
        else:
            paths.append(path)
    return paths


def overlaps(patch: dict[str, Any], changes: list[dict[str, Any]]) -> bool:
    """Whether any changed path (from `json_diff`) touches a field the patch sets."""
    mine = leaf_paths(patch)
    for change in changes:
        theirs = str(change["path"])
        for path in mine:
            if theirs == path or theirs.startswith(path + ".") or path.startswith(theirs + "."):
                return True
    return False
