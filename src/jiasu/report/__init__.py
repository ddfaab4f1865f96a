"""One report for every run: terminal tables, stable JSON, a self-contained HTML page.

>>> from jiasu.report import build_report, from_comparison
>>> report = build_report([{"baseline": "a", "results": {}}], peak=None)
>>> report.runs[0].kind
'benchmark'

For a command's `--html PATH` flag, one call is enough::

    from jiasu.report import write_html
    write_html(result.to_dict(), path)   # a result dict, a Run, or a Report
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from jiasu.core.atomic import atomic_write_text
from jiasu.hardware.peak import Peak, load_peak
from jiasu.report.adapters import (
    DEFAULT_ACCURACY_BUDGET_POINTS,
    ReportError,
    from_comparison,
    from_demo,
    from_optimize,
    from_result,
    from_train,
    load_runs,
)
from jiasu.report.flops import flops_per_sample
from jiasu.report.model import (
    REPORT_KIND,
    SCHEMA_VERSION,
    CurvePoint,
    Entry,
    Interval,
    Report,
    Run,
    Skipped,
)

__all__ = [
    "DEFAULT_ACCURACY_BUDGET_POINTS",
    "REPORT_KIND",
    "SCHEMA_VERSION",
    "CurvePoint",
    "Entry",
    "Interval",
    "Report",
    "ReportError",
    "Run",
    "Skipped",
    "as_report",
    "build_report",
    "flops_per_sample",
    "from_comparison",
    "from_demo",
    "from_optimize",
    "from_result",
    "from_train",
    "load_runs",
    "write_html",
    "write_json",
]

_USE_CACHE: Any = object()  # sentinel: read the cached peak


def build_report(
    results: Iterable[Run | Mapping[str, Any]],
    *,
    title: str = "jiasu report",
    peak: Peak | None = _USE_CACHE,
) -> Report:
    """A report from runs and/or result dicts; `peak` defaults to the cached measurement."""
    runs: list[Run] = []
    for item in results:
        runs.extend([item] if isinstance(item, Run) else from_result(item))
    return Report(tuple(runs), title=title, peak=load_peak() if peak is _USE_CACHE else peak)


def as_report(report_or_result: Report | Run | Mapping[str, Any]) -> Report:
    """A `Report` from a report, a single run, or any result/report dict."""
    if isinstance(report_or_result, Report):
        return report_or_result
    if isinstance(report_or_result, Mapping) and report_or_result.get("kind") == REPORT_KIND:
        return Report.from_dict(dict(report_or_result))
    return build_report([report_or_result])


def write_html(
    report_or_result: Report | Run | Mapping[str, Any], path: str | os.PathLike[str]
) -> Path:
    """Render a self-contained HTML report to `path` atomically and return the path.

    Needs matplotlib (`pip install 'jiasu[report]'`); raises `MissingExtraError` otherwise.
    """
    from jiasu.report.html import render_html

    target = Path(path)
    atomic_write_text(target, render_html(as_report(report_or_result)))
    return target


def write_json(
    report_or_result: Report | Run | Mapping[str, Any], path: str | os.PathLike[str]
) -> Path:
    """Write the report's JSON (schema in docs/report.md) atomically and return the path."""
    target = Path(path)
    text = json.dumps(as_report(report_or_result).to_dict(), indent=2, allow_nan=False)
    atomic_write_text(target, text + "\n")
    return target
