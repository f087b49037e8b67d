"""Exponential restart back-off that forgives a child once it has stayed up for a while."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Backoff:
    initial: float = 0.5
    factor: float = 2.0
    maximum: float = 30.0
    # A child that ran this long before crashing is treated as healthy again: its next crash
    # restarts it quickly instead of after the long delay earned by an earlier crash loop.
    healthy_after: float = 30.0
    _next: float = field(default=0.0, init=False)

    def delay(self, uptime: float) -> float:
        """The wait before restarting a child that crashed after `uptime` seconds."""
        if uptime >= self.healthy_after or self._next == 0.0:
            self._next = self.initial
        current = self._next
        self._next = min(self._next * self.factor, self.maximum)
        return current
