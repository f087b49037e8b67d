"""The guild settings model, v1 (DESIGN §4).

Values are frozen and deeply immutable (tuples, not lists) so one instance can be shared by every
reader in a process. Types are strict: `"true"` is not a bool and `"5"` is not an int, so a
dashboard or CLI typo is refused rather than coerced. Snowflakes are strings in JSON; integers are
accepted on input and normalised to strings.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    field_validator,
)

MAX_SNOWFLAKE: Final = 2**63 - 1
BUILTIN_COMMANDS: Final = ("help", "ping", "settings", "rank")
WELCOME_PLACEHOLDERS: Final = frozenset({"user", "server", "member_count"})
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_COMMAND_NAME = re.compile(r"^[a-z0-9_-]{1,32}$")


def _snowflake(value: Any) -> str:
    if isinstance(value, bool):
        raise ValueError("must be a Discord id (a string of digits)")
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        raise ValueError("must be a Discord id (a string of digits)")
    if not 0 < int(value) <= MAX_SNOWFLAKE:
        raise ValueError("is not a valid Discord id (out of range)")
    return str(int(value))


Snowflake = Annotated[str, BeforeValidator(_snowflake)]


def _unique(values: tuple[Any, ...]) -> tuple[Any, ...]:
    if len(set(values)) != len(values):
        raise ValueError("must not contain duplicates")
    return values


def _prefix(value: str) -> str:
    if any(ch.isspace() for ch in value):
        raise ValueError("must not contain whitespace")
    return value


def _welcome_message(value: str) -> str:
    unknown = sorted({m for m in _PLACEHOLDER.findall(value) if m not in WELCOME_PLACEHOLDERS})
    if unknown:
        allowed = ", ".join("{" + p + "}" for p in sorted(WELCOME_PLACEHOLDERS))
        raise ValueError(f"unknown placeholder {{{unknown[0]}}}; allowed: {allowed}")
    return value


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WelcomeSettings(_Frozen):
    enabled: StrictBool = False
    channel_id: Snowflake | None = None
    message: Annotated[StrictStr, Field(max_length=2000), AfterValidator(_welcome_message)] = (
        "Welcome {user} to {server}!"
    )


BlockedWord = Annotated[StrictStr, Field(min_length=1, max_length=64)]


class ModerationSettings(_Frozen):
    anti_link: StrictBool = False
    anti_spam: StrictBool = False
    spam_max_messages: Annotated[StrictInt, Field(ge=2, le=20)] = 5
    spam_window_seconds: Annotated[StrictInt, Field(ge=1, le=60)] = 5
    blocked_words: Annotated[tuple[BlockedWord, ...], Field(max_length=200)] = ()
    exempt_role_ids: Annotated[
        tuple[Snowflake, ...], Field(max_length=25), AfterValidator(_unique)
    ] = ()


class CustomCommand(_Frozen):
    name: StrictStr
    response: Annotated[StrictStr, Field(min_length=1, max_length=2000)]

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _COMMAND_NAME.match(value):
            raise ValueError("must be 1-32 characters of a-z, 0-9, _ or -")
        if value in BUILTIN_COMMANDS:
            raise ValueError(f"'{value}' is a built-in command")
        return value


def _unique_command_names(commands: tuple[CustomCommand, ...]) -> tuple[CustomCommand, ...]:
    names = [c.name for c in commands]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"duplicate command name '{duplicates[0]}'")
    return commands


def _builtin_names(names: tuple[str, ...]) -> tuple[str, ...]:
    unknown = [n for n in names if n not in BUILTIN_COMMANDS]
    if unknown:
        raise ValueError(
            f"'{unknown[0]}' is not a built-in command; choose from {', '.join(BUILTIN_COMMANDS)}"
        )
    return _unique(names)


class LevelingSettings(_Frozen):
    enabled: StrictBool = False
    announce_channel_id: Snowflake | None = None


class GuildSettings(_Frozen):
    """One guild's settings. `GuildSettings()` is the defaults every guild starts with."""

    prefix: Annotated[StrictStr, Field(min_length=1, max_length=5), AfterValidator(_prefix)] = "!"
    welcome: WelcomeSettings = WelcomeSettings()
    auto_roles: Annotated[tuple[Snowflake, ...], Field(max_length=10), AfterValidator(_unique)] = ()
    moderation: ModerationSettings = ModerationSettings()
    log_channel_id: Snowflake | None = None
    disabled_commands: Annotated[tuple[StrictStr, ...], AfterValidator(_builtin_names)] = ()
    custom_commands: Annotated[
        tuple[CustomCommand, ...], Field(max_length=50), AfterValidator(_unique_command_names)
    ] = ()
    leveling: LevelingSettings = LevelingSettings()

    def to_json(self) -> dict[str, Any]:
        """The JSON document (DESIGN §3): snowflakes as strings, lists as lists."""
        return self.model_dump(mode="json")

    def channel_ids(self) -> set[str]:
        """Every channel this document refers to (checked against the guild on save)."""
        ids = {self.welcome.channel_id, self.log_channel_id, self.leveling.announce_channel_id}
        return {i for i in ids if i is not None}

    def role_ids(self) -> set[str]:
        """Every role this document refers to (checked against the guild on save)."""
        return set(self.auto_roles) | set(self.moderation.exempt_role_ids)


DEFAULT_SETTINGS: Final = GuildSettings()
