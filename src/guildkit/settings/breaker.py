"""A circuit breaker, so that while Redis is down nobody waits on its timeouts (DESIGN §2.5)."""

from __future__ import annotations

import enum
import time
from collections.abc import Callable


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Opens after `failure_threshold` consecutive failures; after a cool-down lets one probe
    through (half-open), and closes again when that probe succeeds. Each failed probe doubles the
    cool-down, up to `max_reset_after`, so a long outage costs one timeout every few seconds.
    """

    def __init__(
        self,
        *,
        failure_threshold: int = 3,
        reset_after: float = 0.5,
        max_reset_after: float = 4.0,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[BreakerState], None] | None = None,
    ) -> None:
        self._threshold = failure_threshold
        self._base_reset = reset_after
        self._max_reset = max_reset_after
        self._clock = clock
        self._on_change = on_change
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._reset_after = reset_after
        self._open_until = 0.0
        self._probe_in_flight = False

    @property
    def state(self) -> BreakerState:
        return self._state

    def allow(self) -> bool:
        """May a call go to Redis now? In half-open state only one probe at a time may."""
        if self._state is BreakerState.CLOSED:
            return True
        if self._state is BreakerState.OPEN:
            if self._clock() < self._open_until:
                return False
            self._set(BreakerState.HALF_OPEN)
        if self._probe_in_flight:
            return False
        self._probe_in_flight = True
        return True

    def record_success(self) -> None:
        self._failures = 0
        self._probe_in_flight = False
        self._reset_after = self._base_reset
        if self._state is not BreakerState.CLOSED:
            self._set(BreakerState.CLOSED)

    def record_failure(self) -> None:
        self._probe_in_flight = False
        self._failures += 1
        if self._state is BreakerState.HALF_OPEN:
            self._reset_after = min(self._reset_after * 2, self._max_reset)
            self._trip()
        elif self._state is BreakerState.CLOSED and self._failures >= self._threshold:
            self._trip()

    def _trip(self) -> None:
        self._open_until = self._clock() + self._reset_after
        self._set(BreakerState.OPEN)

    def _set(self, state: BreakerState) -> None:
        if state is not self._state:
            self._state = state
            if self._on_change is not None:
                self._on_change(state)
