"""One report structure for every run: demo, train, optimize and the benchmarks.

A `Report` holds one `Run` per result file. A run compares *entries* (the baseline and
each technique, recipe, backend or benchmark case) against its baseline, lists what was
skipped or dropped and why, and keeps the environment it was measured in. Every field
that a kind of run cannot fill is None or empty, and every renderer leaves out what is
absent, so a benchmark without accuracies or a demo without latencies renders cleanly.

Units live in names: `_s` seconds, `_ms` milliseconds, `_per_s` rates. Accuracies are
fractions (0.9481); accuracy deltas and budgets are percentage *points* (−0.12).

>>> entry = Entry(name="fast", speedup=1.3)
>>> run = Run(kind="benchmark", title="t", baseline="plain", entries=(Entry("plain"), entry))
>>> Report.from_dict(Report(runs=(run,)).to_dict()).runs[0].entries[1].speedup
1.3
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from typing import Any, Literal

from jiasu.hardware.peak import Peak, peak_quality

SCHEMA_VERSION = 2  # 2: ratios against the baseline timed alike (docs/report.md)
REPORT_KIND = "jiasu.report"

RunKind = Literal["demo", "train", "optimize", "benchmark"]
RUN_KINDS: tuple[str, ...] = ("demo", "train", "optimize", "benchmark")
SkipStatus = Literal["skipped", "dropped", "failed", "rejected"]


@dataclasses.dataclass(frozen=True)
class Interval:
    """A spread around a value: p10–p90 of repeats, or a confidence interval."""

    low: float
    high: float

    def to_list(self) -> list[float]:
        return [self.low, self.high]

    @classmethod
    def from_any(cls, value: object) -> Interval | None:
        """From [low, high], {"low", "high"} or {"p10", "p90"}; None for anything else."""
        if isinstance(value, (list, tuple)) and len(value) == 2:
            low, high = value
        elif isinstance(value, dict) and "low" in value and "high" in value:
            low, high = value["low"], value["high"]
        elif isinstance(value, dict) and "p10" in value and "p90" in value:
            low, high = value["p10"], value["p90"]
        else:
            return None
        if not isinstance(low, (int, float)) or not isinstance(high, (int, float)):
            return None
        return cls(float(low), float(high))


@dataclasses.dataclass(frozen=True)
class CurvePoint:
    """One point of a training curve: accuracy after `wall_s` seconds of wall time."""

    epoch: int
    wall_s: float
    accuracy: float | None
    loss: float | None = None
    samples_per_s: float | None = None
    lr: float | None = None


@dataclasses.dataclass(frozen=True)
class Entry:
    """One way of doing the job, measured against the run's baseline.

    `speedup` is baseline time / this entry's time (> 1 is faster), the baseline being
    the entry named `versus` (default: the run's baseline), timed the same way as this
    one; `speedup_interval` is a confidence interval of it from paired rounds that
    always contains it. `latency_ms` holds raw per-call timings when the run kept
    them (for distributions). `flops_per_sample` (forward, plus backward when training)
    times `samples_per_s` gives the achieved FLOP rate.
    """

    name: str
    label: str = ""  # what it is: a recipe's techniques, a backend, a case
    speedup: float | None = None
    speedup_interval: Interval | None = None
    versus: str | None = None  # the baseline entry `speedup` divides; None: the run's
    train_seconds: float | None = None
    time_to_target_s: float | None = None
    samples_per_s: float | None = None
    latency_ms_p50: float | None = None
    latency_ms_p99: float | None = None
    latency_ms: tuple[float, ...] = ()
    accuracy: float | None = None
    accuracy_delta_points: float | None = None
    accuracy_delta_interval: Interval | None = None
    max_abs_error: float | None = None
    top1_agreement: float | None = None
    cosine_similarity: float | None = None  # with the baseline's outputs, mean over samples
    # The verification's metric where it is not accuracy (which has the fields above):
    # "mse" or "mae" (the labels' units) or "agreement" (with fp32, a fraction), the value,
    # its change against the baseline and that change's confidence interval.
    task_metric: str | None = None
    metric_value: float | None = None
    metric_delta: float | None = None
    metric_delta_interval: Interval | None = None
    verdict: str | None = None  # e.g. "baseline", "accepted", "rejected", "chosen", "failed"
    reason: str = ""
    precision: str = "fp32"  # which peak the achieved rate is compared with
    flops_per_sample: float | None = None
    curve: tuple[CurvePoint, ...] = ()
    details: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def achieved_flops_per_s(self) -> float | None:
        if self.flops_per_sample is None or self.samples_per_s is None:
            return None
        return self.flops_per_sample * self.samples_per_s

    def peak_fraction(self, peak: Peak | None) -> float | None:
        """Achieved FLOP rate / the measured peak for this entry's precision."""
        achieved = self.achieved_flops_per_s
        limit = peak.flops_per_s(self.precision) if peak is not None else None
        if achieved is None or not limit:
            return None
        return achieved / limit

    @property
    def failed(self) -> bool:
        return self.verdict == "failed"


@dataclasses.dataclass(frozen=True)
class Skipped:
    """A technique, backend or case that did not make it into the result, and why."""

    name: str
    reason: str
    status: SkipStatus = "skipped"


@dataclasses.dataclass(frozen=True)
class Run:
    """One result (one file): entries compared against `baseline`."""

    kind: RunKind
    title: str
    baseline: str
    entries: tuple[Entry, ...]
    chosen: str | None = None
    skipped: tuple[Skipped, ...] = ()
    accuracy_budget_points: float | None = None  # the largest accepted accuracy drop
    metric: str = "time"  # what the speedup is a ratio of, in words
    source: str = ""
    environment: dict[str, Any] = dataclasses.field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def entry(self, name: str) -> Entry | None:
        return next((e for e in self.entries if e.name == name), None)

    def is_baseline(self, entry: Entry) -> bool:
        """The run's baseline, or the same baseline timed another way (verdict "baseline")."""
        return entry.name == self.baseline or entry.verdict == "baseline"

    def versus(self, entry: Entry) -> str:
        """The name of the baseline entry whose time `entry.speedup` divides."""
        return entry.versus or self.baseline

    @property
    def baseline_entry(self) -> Entry | None:
        return self.entry(self.baseline)


@dataclasses.dataclass(frozen=True)
class Report:
    """Everything one report page, table or JSON file shows."""

    runs: tuple[Run, ...]
    title: str = "jiasu report"
    created: str = dataclasses.field(
        default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds")
    )
    peak: Peak | None = None

    @property
    def created_at(self) -> datetime | None:
        """`created` as a time (None if it is not ISO 8601): the "now" a peak's age is from."""
        try:
            when = datetime.fromisoformat(self.created)
        except ValueError:
            return None
        return when if when.tzinfo else when.replace(tzinfo=timezone.utc)

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON form (documented in docs/report.md)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": REPORT_KIND,
            "title": self.title,
            "created": self.created,
            "peak": self.peak.to_dict() if self.peak is not None else None,
            # its age when the report was made, its noise, and why it may be wrong
            "peak_quality": (
                peak_quality(self.peak, self.created_at) if self.peak is not None else None
            ),
            "runs": [_run_to_dict(run, self.peak) for run in self.runs],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        peak = data.get("peak")
        return cls(
            runs=tuple(_run_from_dict(r) for r in data.get("runs", [])),
            title=str(data.get("title", "jiasu report")),
            created=str(data.get("created", "")),
            peak=Peak.from_dict(peak) if isinstance(peak, dict) else None,
        )


def _entry_to_dict(entry: Entry, peak: Peak | None) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for field in dataclasses.fields(entry):
        value = getattr(entry, field.name)
        if isinstance(value, Interval):
            value = value.to_list()
        elif field.name == "latency_ms":
            value = list(value)
        elif field.name == "curve":
            value = [dataclasses.asdict(p) for p in value]
        data[field.name] = value
    data["achieved_flops_per_s"] = entry.achieved_flops_per_s
    data["peak_fraction"] = entry.peak_fraction(peak)
    return data


def _entry_from_dict(data: dict[str, Any]) -> Entry:
    known = {f.name for f in dataclasses.fields(Entry)}
    values = {k: v for k, v in data.items() if k in known}
    for key in ("speedup_interval", "accuracy_delta_interval", "metric_delta_interval"):
        values[key] = Interval.from_any(values.get(key))
    values["latency_ms"] = tuple(float(v) for v in values.get("latency_ms") or ())
    values["curve"] = tuple(CurvePoint(**p) for p in values.get("curve") or ())
    values["details"] = dict(values.get("details") or {})
    return Entry(**values)


def _run_to_dict(run: Run, peak: Peak | None) -> dict[str, Any]:
    return {
        "kind": run.kind,
        "title": run.title,
        "source": run.source,
        "metric": run.metric,
        "baseline": run.baseline,
        "chosen": run.chosen,
        "accuracy_budget_points": run.accuracy_budget_points,
        "entries": [_entry_to_dict(e, peak) for e in run.entries],
        "skipped": [dataclasses.asdict(s) for s in run.skipped],
        "notes": list(run.notes),
        "environment": run.environment,
    }


def _run_from_dict(data: dict[str, Any]) -> Run:
    return Run(
        kind=data["kind"],
        title=str(data.get("title", data["kind"])),
        baseline=str(data.get("baseline", "")),
        entries=tuple(_entry_from_dict(e) for e in data.get("entries", [])),
        chosen=data.get("chosen"),
        skipped=tuple(Skipped(**s) for s in data.get("skipped", [])),
        accuracy_budget_points=data.get("accuracy_budget_points"),
        metric=str(data.get("metric", "time")),
        source=str(data.get("source", "")),
        environment=dict(data.get("environment") or {}),
        notes=tuple(data.get("notes", [])),
    )
