from __future__ import annotations

from guildkit.settings.applied import AppliedTracker


def test_fast_path_advances_only_over_unbroken_runs() -> None:
    tracker = AppliedTracker(10)
    assert not tracker.signal_applied(12)
    assert tracker.applied == 10
    assert tracker.signal_applied(11)
    assert tracker.applied == 12
    assert not tracker.signal_applied(5), "old signals change nothing"


def test_catch_up_jumps_gaps_and_keeps_later_pending_signals() -> None:
    tracker = AppliedTracker(0)
    tracker.signal_applied(3)
    tracker.signal_applied(6)
    assert tracker.applied == 0
    assert tracker.caught_up_to(5)
    assert tracker.applied == 6, "pending 6 follows 5 directly"
    assert not tracker.caught_up_to(4)
