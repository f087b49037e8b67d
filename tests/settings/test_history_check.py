"""The oracle itself must catch what it is there to catch."""

from __future__ import annotations

from tests.settings.history_check import check_history


def read(t: float, version: int, guild: str = "1") -> dict[str, object]:
    return {"event": "read", "guild": guild, "version": version, "t": t}


def test_a_clean_history_passes() -> None:
    verdict = check_history(
        [{"guild": "1", "version": 2, "t": 10.0}],
        {"r": [read(0, 1), read(10.5, 2), read(30, 2)]},
        {"1": 2},
        bound=5,
        stopped_at={"r": 40.0},
    )
    assert verdict.violations == [] and verdict.propagation == [0.5]


def test_a_read_older_than_the_bound_is_caught() -> None:
    verdict = check_history(
        [{"guild": "1", "version": 2, "t": 10.0}],
        {"r": [read(0, 1), read(15.5, 2), read(30, 2)]},
        {"1": 2},
        bound=5,
        stopped_at={"r": 40.0},
    )
    assert len(verdict.stale_reads) == 1


def test_a_reader_silent_until_it_stopped_is_still_judged() -> None:
    """No event after the commit does not mean the reader was gone: it was serving v1."""
    verdict = check_history(
        [{"guild": "1", "version": 2, "t": 10.0}],
        {"r": [read(0, 1)]},
        {"1": 1},
        bound=5,
        stopped_at={"r": 20.0},
    )
    assert len(verdict.stale_reads) == 1


def test_commits_whose_deadline_is_after_the_stop_are_not_judged() -> None:
    verdict = check_history(
        [{"guild": "1", "version": 2, "t": 18.0}],
        {"r": [read(0, 1)]},
        {"1": 1},
        bound=5,
        stopped_at={"r": 20.0},
    )
    assert verdict.stale_reads == [] and verdict.propagation == []


def test_going_backwards_and_errors_and_disagreement_are_caught() -> None:
    verdict = check_history(
        [],
        {"r": [read(0, 3), read(1, 2), {"event": "error", "guild": "1", "t": 2}]},
        {"1": 3},
        bound=5,
        stopped_at={"r": 10.0},
    )
    assert len(verdict.backwards) == 1
    assert len(verdict.read_errors) == 1
    assert len(verdict.disagreements) == 1


def test_every_read_below_the_highest_served_is_backwards_not_only_the_first_dip() -> None:
    verdict = check_history(
        [],
        {"r": [read(0, 3), read(1, 1), read(2, 2), read(3, 3)]},
        {"1": 3},
        bound=5,
        stopped_at={"r": 10.0},
    )
    assert verdict.backwards == ["r guild 1: v3@0 then v1@1", "r guild 1: v3@0 then v2@2"]
