from __future__ import annotations

from guildkit.settings.breaker import BreakerState, CircuitBreaker


def state_of(breaker: CircuitBreaker) -> BreakerState:
    """Read afresh: the state changes under calls the type checker cannot see through."""
    return breaker.state


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_consecutive_failures_and_fails_fast() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=3, reset_after=1.0, clock=clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.record_failure()
    assert state_of(breaker) is BreakerState.CLOSED
    assert breaker.allow()
    breaker.record_failure()
    assert state_of(breaker) is BreakerState.OPEN
    assert not breaker.allow()


def test_a_success_resets_the_failure_count() -> None:
    breaker = CircuitBreaker(failure_threshold=2, clock=FakeClock())
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert state_of(breaker) is BreakerState.CLOSED


def test_half_open_lets_exactly_one_probe_and_closes_on_success() -> None:
    clock = FakeClock()
    changes: list[BreakerState] = []
    breaker = CircuitBreaker(
        failure_threshold=1, reset_after=1.0, clock=clock, on_change=changes.append
    )
    breaker.record_failure()
    clock.now += 1.0
    assert breaker.allow()
    assert state_of(breaker) is BreakerState.HALF_OPEN
    assert not breaker.allow(), "a second caller must not probe concurrently"
    breaker.record_success()
    assert state_of(breaker) is BreakerState.CLOSED and breaker.allow()
    assert changes == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]


def test_failed_probes_back_off_up_to_the_cap() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_after=1.0, max_reset_after=3.0, clock=clock)
    breaker.record_failure()
    waits = []
    for _ in range(4):
        waited = 0.0
        while not breaker.allow():
            clock.now += 0.25
            waited += 0.25
        waits.append(waited)
        breaker.record_failure()
    assert waits == [1.0, 2.0, 3.0, 3.0]
