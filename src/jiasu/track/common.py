"""What the trackers share: safe names, each run's start time, an entry's summary figures."""

from __future__ import annotations

import re
from datetime import datetime

from jiasu.core.errors import JiasuError
from jiasu.report.model import Entry, Report, Run


class TrackingError(JiasuError):
    """The tracker refused the data (bad URI, server unreachable, store not allowed)."""


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str) -> str:
    """A name usable as a folder or metric key: "int8 (dynamic)" → "int8_dynamic_"."""
    return _UNSAFE.sub("_", text).strip("_") or "unnamed"


def run_start_s(run: Run, report: Report) -> float:
    """The run's start as a Unix time: its environment's timestamp, else the report's."""
    for stamp in (run.environment.get("timestamp"), report.created):
        if isinstance(stamp, str) and stamp:
            try:
                return datetime.fromisoformat(stamp).timestamp()
            except ValueError:
                continue
    return datetime.now().timestamp()


def summary_metrics(entry: Entry, report: Report) -> dict[str, float]:
    """The entry's headline figures that are present, by metric name."""
    values = {
        "speedup": entry.speedup,
        "accuracy": entry.accuracy,
        "accuracy_delta_points": entry.accuracy_delta_points,
        "samples_per_s": entry.samples_per_s,
        "train_seconds": entry.train_seconds,
        "time_to_target_s": entry.time_to_target_s,
        "latency_ms_p50": entry.latency_ms_p50,
        "latency_ms_p99": entry.latency_ms_p99,
        "achieved_flops_per_s": entry.achieved_flops_per_s,
        "peak_fraction": entry.peak_fraction(report.peak),
    }
    return {k: float(v) for k, v in values.items() if v is not None}


CURVE_METRICS = ("accuracy", "loss", "samples_per_s", "lr")
