from __future__ import annotations

from guildkit.settings.lag import LAG_BUCKETS, LagHistogram


def test_observations_land_in_the_first_bucket_that_holds_them() -> None:
    histogram = LagHistogram()
    for seconds in (0.003, 0.005, 0.04, 4.0, 100.0):
        histogram.observe(seconds)
    cumulative = dict(histogram.cumulative())
    assert cumulative["0.005"] == 2  # bounds are inclusive, as Prometheus' `le`
    assert cumulative["0.05"] == 3
    assert cumulative["5.0"] == 4
    assert cumulative["30.0"] == 4
    assert cumulative["+Inf"] == 5 == histogram.total
    assert abs(histogram.sum - 104.048) < 1e-9


def test_clock_skew_never_makes_a_negative_lag() -> None:
    histogram = LagHistogram()
    histogram.observe(-0.2)
    assert histogram.sum == 0.0
    assert histogram.cumulative()[0] == (str(LAG_BUCKETS[0]), 1)


def test_cumulative_counts_never_decrease_and_end_with_inf() -> None:
    histogram = LagHistogram()
    for i in range(200):
        histogram.observe(i / 10)
    counts = [count for _, count in histogram.cumulative()]
    assert counts == sorted(counts)
    assert histogram.cumulative()[-1] == ("+Inf", 200)
    assert len(counts) == len(LAG_BUCKETS) + 1
