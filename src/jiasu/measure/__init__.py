"""Measuring speed honestly: a timing harness, statistics, environment capture, rendering.

>>> from jiasu.measure import compare, render_comparison
>>> c = compare({"a": lambda: None, "b": lambda: None}, baseline="a", repeats=3)
>>> c.baseline
'a'
"""

from __future__ import annotations

from jiasu.measure.benchmark import (
    TABLE_COLUMNS,
    BenchmarkError,
    CaseResult,
    Comparison,
    Measurement,
    compare,
    format_rate,
    format_seconds,
    measure,
)
from jiasu.measure.environment import capture_environment, package_version
from jiasu.measure.render import render_comparison
from jiasu.measure.stats import Summary, percentile, ratio_summary

__all__ = [
    "TABLE_COLUMNS",
    "BenchmarkError",
    "CaseResult",
    "Comparison",
    "Measurement",
    "Summary",
    "capture_environment",
    "compare",
    "format_rate",
    "format_seconds",
    "measure",
    "package_version",
    "percentile",
    "ratio_summary",
    "render_comparison",
]
