"""What both history oracles check the same way: one reader's versions never go backwards.

`tests/settings/history_check.py` (reader processes printing each version they serve) and
`chaos/oracle.py` (bot replies naming the version they acted on) judge staleness differently —
a series of changes against sampled decisions — but monotonicity is one rule for both.
"""

from __future__ import annotations

from collections.abc import Iterable

Sample = tuple[float, int]  # (time, version)


def regressions(series: Iterable[Sample]) -> list[tuple[Sample, Sample]]:
    """One reader's samples of one guild, in time order: every sample whose version is below
    the highest this reader served before it, paired with that earlier (time, version)."""
    found: list[tuple[Sample, Sample]] = []
    highest: Sample | None = None
    for sample in series:
        if highest is not None and sample[1] < highest[1]:
            found.append((highest, sample))
        else:
            highest = sample
    return found
