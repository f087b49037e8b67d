from __future__ import annotations

from typing import Any

import pytest

from guildkit.settings.errors import SettingsValidationError
from guildkit.settings.merge_patch import apply_merge_patch
from guildkit.settings.model import DEFAULT_SETTINGS, GuildSettings
from guildkit.settings.validation import validate_settings


def errors_for(document: Any) -> list[dict[str, Any]]:
    with pytest.raises(SettingsValidationError) as caught:
        validate_settings(document)
    return caught.value.errors


def test_defaults_match_the_design() -> None:
    doc = GuildSettings().to_json()
    assert doc["prefix"] == "!"
    assert doc["welcome"] == {
        "enabled": False,
        "channel_id": None,
        "message": "Welcome {user} to {server}!",
    }
    assert doc["auto_roles"] == []
    assert doc["moderation"]["spam_max_messages"] == 5
    assert doc["moderation"]["spam_window_seconds"] == 5
    assert doc["leveling"] == {"enabled": False, "announce_channel_id": None}
    assert doc["custom_commands"] == [] and doc["disabled_commands"] == []


def test_snowflakes_are_strings_in_json_and_ints_are_normalised() -> None:
    settings = validate_settings({"auto_roles": [123456789012345678, "223456789012345678"]})
    assert settings.to_json()["auto_roles"] == ["123456789012345678", "223456789012345678"]


def test_values_are_deeply_immutable() -> None:
    settings = validate_settings({"auto_roles": ["1"]})
    assert isinstance(settings.auto_roles, tuple)
    with pytest.raises(Exception):  # noqa: B017 - pydantic raises its own frozen error
        settings.prefix = "?"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("document", "loc"),
    [
        ({"prefix": ""}, ["prefix"]),
        ({"prefix": "toolong"}, ["prefix"]),
        ({"prefix": "a b"}, ["prefix"]),
        ({"prefix": 5}, ["prefix"]),
        ({"welcome": {"enabled": "true"}}, ["welcome", "enabled"]),
        ({"welcome": {"message": "x" * 2001}}, ["welcome", "message"]),
        ({"welcome": {"message": "Hi {usr}"}}, ["welcome", "message"]),
        ({"welcome": {"channel_id": "abc"}}, ["welcome", "channel_id"]),
        ({"welcome": {"channel_id": str(2**64)}}, ["welcome", "channel_id"]),
        ({"auto_roles": [str(i + 1) for i in range(11)]}, ["auto_roles"]),
        ({"auto_roles": ["1", "1"]}, ["auto_roles"]),
        ({"moderation": {"spam_max_messages": 1}}, ["moderation", "spam_max_messages"]),
        ({"moderation": {"spam_window_seconds": 61}}, ["moderation", "spam_window_seconds"]),
        ({"moderation": {"spam_max_messages": "5"}}, ["moderation", "spam_max_messages"]),
        ({"moderation": {"blocked_words": ["w"] * 201}}, ["moderation", "blocked_words"]),
        ({"moderation": {"blocked_words": ["x" * 65]}}, ["moderation", "blocked_words", 0]),
        (
            {"moderation": {"exempt_role_ids": [str(i + 1) for i in range(26)]}},
            ["moderation", "exempt_role_ids"],
        ),
        ({"disabled_commands": ["nope"]}, ["disabled_commands"]),
        (
            {"custom_commands": [{"name": "Bad Name", "response": "x"}]},
            ["custom_commands", 0, "name"],
        ),
        ({"custom_commands": [{"name": "ping", "response": "x"}]}, ["custom_commands", 0, "name"]),
        (
            {"custom_commands": [{"name": "a", "response": "x"}, {"name": "a", "response": "y"}]},
            ["custom_commands"],
        ),
        (
            {"custom_commands": [{"name": f"c{i}", "response": "x"} for i in range(51)]},
            ["custom_commands"],
        ),
        ({"unknown_field": 1}, ["unknown_field"]),
        ({"welcome": {"extra": 1}}, ["welcome", "extra"]),
        ({"leveling": {"enabled": 1}}, ["leveling", "enabled"]),
    ],
)
def test_invalid_documents_name_the_field(document: dict[str, Any], loc: list[Any]) -> None:
    errors = errors_for(document)
    assert [e["loc"] for e in errors] == [loc]
    assert all(e["msg"] and e["type"] for e in errors)


def test_messages_are_readable_without_pydantic_prefixes() -> None:
    (error,) = errors_for({"prefix": "a b"})
    assert error["msg"] == "must not contain whitespace"


def test_non_object_document_is_refused() -> None:
    assert errors_for([1, 2])[0]["loc"] == []


def test_merge_patch_follows_rfc_7396() -> None:
    target = {"a": "b", "c": {"d": "e", "f": "g"}}
    assert apply_merge_patch(target, {"a": "z", "c": {"f": None}}) == {"a": "z", "c": {"d": "e"}}
    assert apply_merge_patch(target, {"c": ["x"]}) == {"a": "b", "c": ["x"]}
    assert apply_merge_patch({"a": [1, 2]}, {"a": [3]}) == {"a": [3]}
    assert target == {"a": "b", "c": {"d": "e", "f": "g"}}, "inputs must not be modified"


def test_null_in_a_patch_restores_the_default() -> None:
    current = validate_settings({"prefix": "?", "log_channel_id": "42"}).to_json()
    after = validate_settings(apply_merge_patch(current, {"prefix": None, "log_channel_id": None}))
    assert after == DEFAULT_SETTINGS


def test_referenced_ids_are_collected_for_the_dashboard_check() -> None:
    settings = validate_settings(
        {
            "welcome": {"channel_id": "10"},
            "log_channel_id": "11",
            "leveling": {"announce_channel_id": "12"},
            "auto_roles": ["20"],
            "moderation": {"exempt_role_ids": ["21"]},
        }
    )
    assert settings.channel_ids() == {"10", "11", "12"}
    assert settings.role_ids() == {"20", "21"}


def test_nul_characters_are_refused_with_the_field() -> None:
    (error,) = errors_for({"welcome": {"message": "hi\x00"}})
    assert error["loc"] == ["welcome", "message"] and error["type"] == "nul_char"
    (error,) = errors_for({"moderation": {"blocked_words": ["ok", "b\x00d"]}})
    assert error["loc"] == ["moderation", "blocked_words", 1]
