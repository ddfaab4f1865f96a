"""Summary statistics for repeated timings: median and p10/p90 rather than mean ± stdev.

Percentiles use linear interpolation between order statistics (numpy's default), so
the median of an even-length list is the mean of its two middle values.

>>> s = Summary.from_values([1.0, 2.0, 3.0, 4.0])
>>> s.median, s.p10, s.p90
(2.5, 1.3, 3.7)
>>> r = ratio_summary([2.0, 4.0], [1.0, 2.0])
>>> r.median
2.0
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from jiasu.core.errors import ConfigError


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The `q`-th percentile (0..100) of already-sorted values, by linear interpolation.

    >>> percentile([10.0, 20.0, 30.0], 50)
    20.0
    >>> percentile([10.0, 20.0], 25)
    12.5
    """
    if not sorted_values:
        raise ConfigError("percentile of an empty list is undefined; pass at least one value")
    if not 0 <= q <= 100:
        raise ConfigError(f"percentile {q!r} is out of range; use a number from 0 to 100")
    rank = (len(sorted_values) - 1) * q / 100
    lo = math.floor(rank)
    hi = min(lo + 1, len(sorted_values) - 1)
    frac = rank - lo
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * frac


@dataclass(frozen=True)
class Summary:
    """Distribution of n ≥ 1 values; `stdev` is the sample standard deviation (0 for n=1)."""

    n: int
    median: float
    p10: float
    p90: float
    mean: float
    stdev: float
    min: float
    max: float

    @classmethod
    def from_values(cls, values: Sequence[float]) -> Summary:
        """Summarise a non-empty sequence of finite numbers."""
        data = [float(v) for v in values]
        if not data:
            raise ConfigError("cannot summarise an empty list of values; pass at least one")
        bad = [v for v in data if not math.isfinite(v)]
        if bad:
            raise ConfigError(f"value {bad[0]!r} is not finite; only finite numbers are allowed")
        data.sort()
        n = len(data)
        mean = math.fsum(data) / n
        var = math.fsum((v - mean) ** 2 for v in data) / (n - 1) if n > 1 else 0.0
        return cls(
            n=n,
            median=percentile(data, 50),
            p10=percentile(data, 10),
            p90=percentile(data, 90),
            mean=mean,
            stdev=math.sqrt(var),
            min=data[0],
            max=data[-1],
        )

    @property
    def spread(self) -> float:
        """(p90 - p10) / median: the relative width of the middle 80%.

        0.0 when all values agree; infinity if the median is 0 but the values differ.

        >>> round(Summary.from_values([9.0, 10.0, 11.0]).spread, 6)
        0.16
        """
        width = self.p90 - self.p10
        if width == 0:
            return 0.0
        if self.median == 0:
            return math.inf
        return width / abs(self.median)

    def to_dict(self) -> dict[str, float | int]:
        """All fields plus `spread`, as plain numbers."""
        out: dict[str, float | int] = asdict(self)
        out["spread"] = self.spread
        return out


def ratio_summary(baseline_values: Sequence[float], case_values: Sequence[float]) -> Summary:
    """Summary of paired ratios baseline[i] / case[i] (e.g. per-round speedups).

    Both sequences must be non-empty, of the same length, and `case_values` non-zero.

    >>> ratio_summary([4.0, 6.0, 8.0], [2.0, 2.0, 2.0]).median
    3.0
    """
    if len(baseline_values) != len(case_values):
        raise ConfigError(
            f"paired ratios need equal lengths, got {len(baseline_values)} baseline values "
            f"and {len(case_values)} case values; pass one value per round for each"
        )
    if not baseline_values:
        raise ConfigError("paired ratios need at least one pair of values; got none")
    if any(c == 0 for c in case_values):
        raise ConfigError("case value 0 cannot be a ratio's denominator; use non-zero values")
    return Summary.from_values([b / c for b, c in zip(baseline_values, case_values, strict=True)])
