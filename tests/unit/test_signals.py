from __future__ import annotations

import pytest

from guildkit.settings.types import ChangeSignal, parse_guild_id


def test_signal_round_trips_with_snowflake_as_string() -> None:
    signal = ChangeSignal(guild_id=123456789012345678, version=3, change_seq=99)
    raw = signal.to_json()
    assert '"guild_id":"123456789012345678"' in raw
    assert ChangeSignal.from_json(raw) == signal


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "null",
        "[]",
        '{"guild_id": "x", "version": 1, "change_seq": 1}',
        '{"guild_id": "1", "version": 0, "change_seq": 1}',
        '{"guild_id": "1", "version": 1}',
        "123",
    ],
)
def test_malformed_signals_are_refused(raw: str) -> None:
    with pytest.raises(ValueError):
        ChangeSignal.from_json(raw)


@pytest.mark.parametrize("value", ["abc", "-1", "0", "1.5", str(2**63), "", "١٢٣", True])
def test_bad_guild_ids_are_refused_clearly(value: object) -> None:
    with pytest.raises(ValueError, match="guild id"):
        parse_guild_id(value)


def test_guild_ids_parse_from_strings_and_ints() -> None:
    assert parse_guild_id("123") == 123
    assert parse_guild_id(456) == 456
