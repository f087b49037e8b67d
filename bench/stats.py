"""Small statistics helpers: percentiles over raw samples, summaries as plain dicts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (q in 0..100); NaN when empty."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100.0 * len(sorted_values)))
    return float(sorted_values[min(rank, len(sorted_values)) - 1])


def summarize(values: Sequence[float], scale: float = 1.0) -> dict[str, Any]:
    """n, p50, p90, p99, max and mean (each multiplied by `scale`)."""
    ordered = sorted(values)
    if not ordered:
        return {"n": 0, "p50": None, "p90": None, "p99": None, "max": None, "mean": None}
    return {
        "n": len(ordered),
        "p50": percentile(ordered, 50) * scale,
        "p90": percentile(ordered, 90) * scale,
        "p99": percentile(ordered, 99) * scale,
        "max": ordered[-1] * scale,
        "mean": sum(ordered) / len(ordered) * scale,
    }


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0 or math.isnan(a) or math.isnan(b):
        return None
    return a / b
