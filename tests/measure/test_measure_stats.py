"""Summary statistics."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from jiasu.core.errors import ConfigError
from jiasu.measure.stats import Summary, percentile, ratio_summary


def test_known_percentiles_exact() -> None:
    s = Summary.from_values([float(v) for v in range(0, 101, 10)])  # 0, 10, ..., 100
    assert (s.n, s.median, s.p10, s.p90, s.min, s.max, s.mean) == (
        11,
        50.0,
        10.0,
        90.0,
        0.0,
        100.0,
        50.0,
    )


def test_even_length_median_interpolates() -> None:
    s = Summary.from_values([4.0, 1.0, 3.0, 2.0])  # order does not matter
    assert s.median == 2.5
    assert s.p10 == pytest.approx(1.3)
    assert s.p90 == pytest.approx(3.7)
    assert s.stdev == pytest.approx(math.sqrt(5 / 3))


def test_matches_numpy_linear() -> None:
    rng = random.Random(0)
    values = [rng.uniform(0, 10) for _ in range(37)]
    s = Summary.from_values(values)
    p10, p50, p90 = np.percentile(values, [10, 50, 90])
    assert (s.p10, s.median, s.p90) == pytest.approx((p10, p50, p90))
    assert s.stdev == pytest.approx(np.std(values, ddof=1))


def test_single_value() -> None:
    s = Summary.from_values([3.0])
    assert (s.n, s.median, s.p10, s.p90, s.stdev, s.spread) == (1, 3.0, 3.0, 3.0, 0.0, 0.0)


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")], [float("inf")]])
def test_bad_values_raise(bad: list[float]) -> None:
    with pytest.raises(ConfigError):
        Summary.from_values(bad)


def test_spread_and_to_dict() -> None:
    s = Summary.from_values([9.0, 10.0, 11.0])
    assert s.spread == pytest.approx(0.16)
    d = s.to_dict()
    assert set(d) == {"n", "median", "p10", "p90", "mean", "stdev", "min", "max", "spread"}
    assert d["spread"] == s.spread
    assert Summary.from_values([0.0, 0.0, 1.0]).spread == math.inf


def test_percentile_bounds() -> None:
    assert percentile([1.0, 2.0], 0) == 1.0
    assert percentile([1.0, 2.0], 100) == 2.0
    with pytest.raises(ConfigError, match="101"):
        percentile([1.0], 101)


def test_ratio_summary() -> None:
    r = ratio_summary([4.0, 6.0, 9.0], [2.0, 2.0, 3.0])  # ratios 2, 3, 3
    assert (r.n, r.median, r.min, r.max) == (3, 3.0, 2.0, 3.0)
    with pytest.raises(ConfigError, match="equal lengths"):
        ratio_summary([1.0, 2.0], [1.0])
    with pytest.raises(ConfigError):
        ratio_summary([], [])
    with pytest.raises(ConfigError, match="0"):
        ratio_summary([1.0], [0.0])
