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


RATIO_CONFIDENCE = 0.90  # the coverage of every speedup interval jiasu prints
_RESAMPLES = 1000


def paired_ratio_interval(
    baseline_rounds: Sequence[float],
    case_rounds: Sequence[float],
    *,
    statistic: str = "median",
    confidence: float = RATIO_CONFIDENCE,
    resamples: int = _RESAMPLES,
    point: float | None = None,
) -> tuple[float, float]:
    """A `confidence` interval for the ratio stat(baseline) / stat(case) of paired rounds.

    Round i of both sequences was timed together (interleaved calls, or alternating
    blocks), so the rounds are resampled *as pairs* (a percentile bootstrap, seeded, so
    the same timings give the same interval): drift that slowed a round slows both
    sides alike and cancels. `statistic` is "median" (the ratio of medians, as a median
    time per call is printed) or "total" (the ratio of sums, as a total training time is
    printed). The interval always contains the point estimate stat(baseline) /
    stat(case) of all the rounds, and `point` when given (the figure printed beside it,
    where that is computed from more than the rounds, e.g. the median of every call):
    an interval that excludes the figure printed beside it is not an interval of it.

    >>> paired_ratio_interval([2.0, 2.0, 2.0], [1.0, 1.0, 1.0])
    (2.0, 2.0)
    >>> low, high = paired_ratio_interval([2.0, 2.2, 1.9, 2.1], [1.0, 1.2, 0.9, 1.0])
    >>> low <= 2.05 / 1.0 <= high
    True
    """
    import numpy as np

    base = np.asarray(baseline_rounds, dtype=np.float64)
    case = np.asarray(case_rounds, dtype=np.float64)
    if base.shape != case.shape or base.ndim != 1 or base.size == 0:
        raise ConfigError(
            f"paired ratios need two equally long, non-empty lists of rounds; got "
            f"{base.size} baseline and {case.size} case values"
        )
    if not (np.all(np.isfinite(base)) and np.all(np.isfinite(case)) and np.all(case > 0)):
        raise ConfigError("paired ratios need finite values and a positive case time per round")
    if statistic not in ("median", "total"):
        raise ConfigError(f"statistic {statistic!r} is unknown; use median or total")
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence {confidence!r} must be a fraction in (0, 1)")
    reduce = np.median if statistic == "median" else np.sum
    points = [float(reduce(base) / reduce(case))]
    if point is not None and math.isfinite(point):
        points.append(float(point))
    if base.size == 1:
        return min(points), max(points)
    picks = np.random.default_rng(0).integers(0, base.size, size=(resamples, base.size))
    ratios = reduce(base[picks], axis=1) / reduce(case[picks], axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(ratios, [tail, 100 - tail])
    return min(float(low), *points), max(float(high), *points)


def speedup_words(ratio: float, interval: tuple[float, float] | None = None) -> str:
    """A time ratio baseline / this in words: "2.03× faster" or, below 1, "10.00× slower".

    A slower case is said the way a reader checks it: this time / the baseline's. The
    interval, if given, is turned the same way (`speedup_bounds`).

    >>> speedup_words(2.0326), speedup_words(0.1), speedup_words(0.5, (0.4, 0.625))
    ('2.03× faster', '10.00× slower', '2.00× slower (1.60–2.50)')
    """
    if not math.isfinite(ratio) or ratio <= 0:
        return "—"
    text = f"{ratio:.2f}× faster" if ratio >= 1 else f"{1 / ratio:.2f}× slower"
    bounds = speedup_bounds(ratio, interval)
    return text + (f" ({bounds[0]:.2f}–{bounds[1]:.2f})" if bounds else "")


def speedup_bounds(
    ratio: float, interval: tuple[float, float] | None
) -> tuple[float, float] | None:
    """`interval` of a ratio baseline / this as `speedup_words` says it: as is for a
    faster case, as this / baseline (1 / each bound, swapped) for a slower one."""
    if interval is None:
        return None
    if ratio >= 1:
        return interval
    return (1 / interval[1], 1 / interval[0]) if interval[0] > 0 else None
