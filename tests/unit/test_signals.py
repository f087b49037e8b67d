from __future__ import annotations

import pytest

from guildkit.settings.types import ChangeSignal, parse_guild_id


def test_signal_round_trips_with_snowflake_as_string() -> None:
    signal = ChangeSignal(guild_id=123456789012345678, version=3, change_seq=99)
    raw = signal.to_json()
    assert '"guild_id":"123456789012345678"' in raw
    assert ChangeSignal.from_json(raw) == signal


def test_commit_time_travels_with_the_signal_but_not_in_its_identity() -> None:
    signal = ChangeSignal(guild_id=42, version=3, change_seq=99, committed_at=1795637092.123456)
    back = ChangeSignal.from_json(signal.to_json())
    assert back.committed_at == 1795637092.123456
    assert back == ChangeSignal(42, 3, 99)  # diagnostic only: never part of equality


def test_signals_without_a_commit_time_still_parse() -> None:
    raw = '{"guild_id": "42", "version": 3, "change_seq": 99}'
    assert ChangeSignal.from_json(raw).committed_at is None
    assert "committed_at" not in ChangeSignal(42, 3, 99).to_json()


@pytest.mark.parametrize("value", ['"soon"', "null", "true", "[1]", "1e999"])
def test_a_malformed_commit_time_is_ignored_not_fatal(value: str) -> None:
    # The version is what matters; a bad diagnostic field must not drop the invalidation.
    raw = f'{{"guild_id": "42", "version": 3, "change_seq": 99, "committed_at": {value}}}'
    signal = ChangeSignal.from_json(raw)
    assert (signal.version, signal.committed_at) == (3, None)


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
