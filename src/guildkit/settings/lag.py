"""Commit-to-applied lag of change signals, as a fixed-bucket histogram of plain numbers.

Kept here rather than as a Prometheus object so the settings layer has no exporter dependency
and costs nothing per read; the bot's collector turns it into a histogram at scrape time.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

# Seconds. The healthy aim is well under 0.1 s; the promise under any single fault is 5 s.
LAG_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)


@dataclass
class LagHistogram:
    """Counts per bucket (the last one is +Inf), their total and the sum of observations."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(LAG_BUCKETS) + 1))
    total: int = 0
    sum: float = 0.0

    def observe(self, seconds: float) -> None:
        # Clocks of the database host and this host may disagree by a little; never negative.
        seconds = max(0.0, seconds)
        self.counts[bisect.bisect_left(LAG_BUCKETS, seconds)] += 1
        self.total += 1
        self.sum += seconds

    def cumulative(self) -> list[tuple[str, int]]:
        """(upper bound, observations ≤ it) pairs in Prometheus' order, ending with +Inf."""
        running = 0
        out: list[tuple[str, int]] = []
        for bound, count in zip((*map(str, LAG_BUCKETS), "+Inf"), self.counts, strict=True):
            running += count
            out.append((bound, running))
        return out
