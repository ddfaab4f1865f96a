"""The result of `optimize`: one record per candidate, the choice, and its JSON form.

``report.json`` (schema_version 3) holds ``task``, ``verified``, ``budget``, ``baseline``,
``chosen`` and ``candidates``; each candidate has name, backend, settings, exactness,
latency_ms_p50, latency_ms_p99, samples_per_s, speedup, export_s, compile_s, the task's
metric (``metric``, ``metric_value``, ``metric_reference``, ``metric_delta`` with
``metric_delta_ci``), accuracy, accuracy_delta with accuracy_delta_ci (the same figures,
filled only when the metric is accuracy), max_abs_error, max_rel_error,
cosine_similarity (mean over samples) and cosine_similarity_min, top1_agreement (null
unless the outputs are class scores), verdict and reason. Accuracies and deltas are
fractions (0.005 = half a point); MSE and MAE are in the labels' units (squared for MSE).
``verified`` false means no data was given: inputs were generated from the signature for
timing only, no metric was measured, and approximate candidates were not accepted.

A speedup is the baseline's median time over the candidate's, *timed the same way*: a
finalist timed alone is divided by the baseline timed alone, a candidate only screened by
the baseline's screening time. Both baseline figures are in the report (``baseline`` and
``baseline_screening``), each candidate names its denominator (``speedup_versus``), and
the table prints a row for each, so every ratio can be checked against the two times
printed beside it.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jiasu.core.atomic import atomic_write_text
from jiasu.core.signature import InputSignature
from jiasu.core.task import Task
from jiasu.infer.backends.base import Candidate
from jiasu.infer.select import Trial, Verdict, pareto_front
from jiasu.infer.verify import CONFIDENCE, TOLERANCES, AccuracyBudget, Verification
from jiasu.measure.benchmark import Measurement, format_rate, format_seconds
from jiasu.measure.stats import RATIO_CONFIDENCE, percentile, speedup_words

SCHEMA_VERSION = 3  # 3: the budget and metric fields follow `task` (docs/report.md)
NOT_VERIFIED = "accuracy not verified (no data)"


@dataclasses.dataclass(frozen=True)
class CandidateResult:
    """Everything measured and decided about one candidate."""

    candidate: Candidate
    verdict: Verdict
    reason: str
    export_s: float | None = None
    compile_s: float | None = None
    measurement: Measurement | None = None  # seconds per call at the run's batch size
    speedup: float | None = None  # the baseline's median / this median, timed alike
    # RATIO_CONFIDENCE interval of `speedup`, from the same paired rounds (it contains it)
    speedup_interval: tuple[float, float] | None = None
    verification: Verification | None = None
    # How the figures were taken: "isolated" (alone in its own process, the artifact as
    # `jiasu.load` reads it), "blocks" (in this process, in blocks, where no artifact can be
    # written) or "screening" (interleaved call by call with all candidates; not a finalist).
    timing: str | None = None
    # How the baseline figure that `speedup` divides was taken (one of the timings above).
    versus: str | None = None
    # Relative run-to-run noise of its own speed: half the p10–p90 width of its per-round
    # medians (isolated timing only; 0 where rounds are single calls).
    noise: float = 0.0

    @property
    def name(self) -> str:
        return self.candidate.name

    @property
    def latency_ms_p50(self) -> float | None:
        return self.measurement.median_s * 1e3 if self.measurement else None

    @property
    def latency_ms_p99(self) -> float | None:
        if self.measurement is None:
            return None
        return percentile(sorted(self.measurement.seconds), 99) * 1e3

    @property
    def samples_per_s(self) -> float | None:
        return self.measurement.items_per_s if self.measurement else None

    def trial(self) -> Trial:
        v = self.verification
        return Trial(
            self.name,
            self.verdict,
            self.candidate.exactness.value,
            self.latency_ms_p50,
            self.samples_per_s,
            _quality(v),
            self.noise,
        )

    def to_dict(self) -> dict[str, Any]:
        v = self.verification
        tolerance = TOLERANCES.get(self.candidate.exactness)
        return {
            **self.candidate.to_dict(),
            "latency_ms_p50": _num(self.latency_ms_p50),
            "latency_ms_p99": _num(self.latency_ms_p99),
            "samples_per_s": _num(self.samples_per_s),
            "speedup": _num(self.speedup),
            # a RATIO_CONFIDENCE interval of `speedup` from the paired rounds (bootstrap)
            "speedup_interval": (
                [_num(self.speedup_interval[0]), _num(self.speedup_interval[1])]
                if self.speedup_interval
                else None
            ),
            "speedup_confidence": RATIO_CONFIDENCE if self.speedup_interval else None,
            "timing": self.timing,
            "noise": _num(self.noise),
            "repeats": self.measurement.summary.n if self.measurement else None,
            # the timed calls for distribution plots (milliseconds, 6 significant digits):
            # all of them, or MAX_SAMPLES evenly spaced in time order when there are more
            "latency_ms_samples": (
                [float(f"{s * 1e3:.6g}") for s in _spaced(self.measurement.seconds)]
                if self.measurement
                else None
            ),
            "export_s": _num(self.export_s),
            "compile_s": _num(self.compile_s),
            **_verification_dict(v),
            "tolerance": tolerance.to_dict() if tolerance else None,
            "verdict": self.verdict,
            "reason": self.reason,
        }


MAX_SAMPLES = 2000  # a batch-1 run times ~50,000 calls; the report keeps it small


def _spaced(values: Sequence[float], most: int = MAX_SAMPLES) -> Sequence[float]:
    """`values`, or `most` of them evenly spaced (first and last included)."""
    if len(values) <= most:
        return values
    step = (len(values) - 1) / (most - 1)
    return [values[round(i * step)] for i in range(most)]


def _num(value: float | None) -> float | None:
    """JSON has no NaN or infinity: they become null."""
    return value if value is not None and math.isfinite(value) else None


_VERIFICATION_KEYS = (
    "metric", "metric_value", "metric_reference", "metric_delta", "metric_delta_ci",
    "metric_delta_confidence", "accuracy", "accuracy_delta", "accuracy_delta_ci",
    "accuracy_delta_confidence", "max_abs_error", "max_rel_error", "cosine_similarity",
    "cosine_similarity_min", "top1_agreement",
)  # fmt: skip


def _verification_dict(v: Verification | None) -> dict[str, Any]:
    """A candidate's verification for report.json: the task's metric, and the accuracy
    fields of schema 2, filled (with the same figures) only when the metric is accuracy."""
    if v is None:
        return dict.fromkeys(_VERIFICATION_KEYS)
    ci = [_num(v.delta_ci[0]), _num(v.delta_ci[1])]
    accuracy = v.metric == "accuracy"
    return {
        "metric": v.metric,
        "metric_value": _num(v.value),
        "metric_reference": _num(v.reference_value),
        "metric_delta": _num(v.delta),
        "metric_delta_ci": ci,
        "metric_delta_confidence": CONFIDENCE,
        "accuracy": _num(v.accuracy),
        "accuracy_delta": _num(v.accuracy_delta),
        "accuracy_delta_ci": ci if accuracy else None,
        "accuracy_delta_confidence": CONFIDENCE if accuracy else None,
        "max_abs_error": _num(v.max_abs_error),
        "max_rel_error": _num(v.max_rel_error),
        "cosine_similarity": _num(v.cosine_similarity),
        "cosine_similarity_min": _num(v.min_cosine_similarity),
        "top1_agreement": _num(v.top1_agreement),
    }


@dataclasses.dataclass(frozen=True)
class OptimizeResult:
    """What `optimize` found: every candidate, the baseline, the choice and where it ran."""

    model: str
    signature: InputSignature
    target: str
    batch_size: int
    threads: int
    budget: AccuracyBudget
    validation_samples: int
    candidates: tuple[CandidateResult, ...]
    baseline_name: str
    chosen_name: str
    environment: Mapping[str, Any]
    # The baseline as the screening timed it, where its own row shows another timing
    # (alone): the screened candidates' speedups divide this, not the row's figure.
    screening_baseline: Measurement | None = None
    # What the candidates were verified against (the metric the budget applies to), and
    # whether any data was given: False when the inputs were generated from the signature
    # for timing only (nothing verified; approximate candidates not accepted).
    task: Task = dataclasses.field(default_factory=Task)
    verified: bool = True
    output: str | None = None  # the model output verified and served (None: the default)
    onnx_export: Mapping[str, str] = dataclasses.field(default_factory=dict)  # how it was made
    # Where the search's wall time went (seconds per phase, and "total").
    phase_s: Mapping[str, float] = dataclasses.field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, ...] | None:
        """The per-sample shape of a one-float-input model, else None."""
        return self.signature.single_float_shape()

    def get(self, name: str) -> CandidateResult:
        return next(c for c in self.candidates if c.name == name)

    @property
    def baseline(self) -> CandidateResult:
        return self.get(self.baseline_name)

    @property
    def chosen(self) -> CandidateResult:
        return self.get(self.chosen_name)

    def baseline_timed(self, timing: str | None) -> Measurement | None:
        """The baseline's figures taken the way `timing` says (None if not timed so)."""
        base = self.baseline
        if timing == base.timing:
            return base.measurement
        if timing == "screening":
            return self.screening_baseline
        return None

    def _versus(self, c: CandidateResult) -> dict[str, Any] | None:
        """What `c.speedup` divides: the baseline figure timed like `c`."""
        if c.speedup is None or c.versus is None:
            return None
        m = self.baseline_timed(c.versus)
        return {
            "name": self.baseline_name,
            "timing": c.versus,
            "latency_ms_p50": _num(m.median_s * 1e3) if m else None,
        }

    def _screening_baseline_dict(self) -> dict[str, Any] | None:
        m = self.screening_baseline
        if m is None:
            return None
        return {
            "name": self.baseline_name,
            "timing": "screening",
            "latency_ms_p50": _num(m.median_s * 1e3),
            "latency_ms_p99": _num(percentile(sorted(m.seconds), 99) * 1e3),
            "samples_per_s": _num(m.items_per_s),
            "repeats": m.summary.n,
        }

    def to_dict(self) -> dict[str, Any]:
        trials = [c.trial() for c in self.candidates]
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": "jiasu-optimize-report",
            "model": self.model,
            "signature": self.signature.to_dict(),
            "input_shape": list(self.input_shape) if self.input_shape else None,
            "output": self.output,
            "onnx_export": dict(self.onnx_export),
            "target": self.target,
            "batch_size": self.batch_size,
            "threads": self.threads,
            "task": self.task.to_dict(),
            "verified": self.verified,
            "budget": self.budget.to_dict(self.task),
            "validation_samples": self.validation_samples,
            "baseline": self._with_versus(self.baseline),
            "baseline_screening": self._screening_baseline_dict(),
            "chosen": self._with_versus(self.chosen),
            "candidates": [self._with_versus(c) for c in self.candidates],
            "pareto_front": pareto_front(trials, self.target),  # type: ignore[arg-type]
            "environment": dict(self.environment),
            "phase_seconds": {k: round(v, 3) for k, v in self.phase_s.items()},
        }

    def _with_versus(self, c: CandidateResult) -> dict[str, Any]:
        return {**c.to_dict(), "speedup_versus": self._versus(c)}

    def write_json(self, path: Path) -> None:
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    def table_rows(self) -> list[tuple[str, ...]]:
        """Rows for `TABLE_COLUMNS`, one per candidate, the chosen one marked with ★.

        Where the screening timed the baseline too, a second baseline row shows that
        figure right after the first: the screened rows' speedups divide it.
        """
        verified = self.verified
        rows = [
            _row(c, c.name == self.chosen_name, c.name == self.baseline_name, verified)
            for c in self.candidates
        ]
        if self.screening_baseline is not None:
            screened = dataclasses.replace(
                self.baseline, measurement=self.screening_baseline, timing="screening"
            )
            index = self.candidates.index(self.baseline)
            rows.insert(index + 1, _row(screened, False, True, verified))
        return rows

    def table_columns(self) -> tuple[str, ...]:
        """`TABLE_COLUMNS` with the quality column named for this run's task's metric."""
        return tuple(QUALITY_HEADERS.get(self.task.metric, h) if h == QUALITY_COLUMN else h
                     for h in TABLE_COLUMNS)  # fmt: skip


QUALITY_COLUMN = "Δ acc [95% CI]"  # the column of the task's metric against fp32
TABLE_COLUMNS = (
    "candidate", "p50", "p99", "samples/s", "vs baseline", "timed", QUALITY_COLUMN,
    "verdict",
)  # fmt: skip
QUALITY_HEADERS = {  # the quality column's header for each task metric
    "accuracy": QUALITY_COLUMN,
    "mse": "Δ MSE [95% CI]",
    "mae": "Δ MAE [95% CI]",
    "agreement": "agreement w/ fp32 [95% CI]",
}
TIMED_LABELS = {  # report.json "timing" → the table's "timed" column
    "isolated": "alone",
    "blocks": "blocks",
    "screening": "screened",
    "interleaved": "mixed",
}


def _row(c: CandidateResult, chosen: bool, baseline: bool, verified: bool) -> tuple[str, ...]:
    m, v = c.measurement, c.verification

    def ms(value: float | None) -> str:
        return format_seconds(value / 1e3) if value is not None else "—"

    delta = quality_text(v) if verified else "not verified"
    return (
        ("★ " if chosen else "  ") + c.name,
        ms(c.latency_ms_p50),
        ms(c.latency_ms_p99),
        format_rate(m.items_per_s) if m else "—",
        ("baseline" if m else "—") if baseline else _speedup_cell(c),
        TIMED_LABELS.get(c.timing or "", "—"),
        delta,
        c.verdict,
    )


def quality_text(v: Verification | None) -> str:
    """The task's metric against fp32 for the table: "-0.20 [-0.41, +0.00]" (accuracy,
    points), "+1.2e-04 [+8.1e-05, +1.6e-04]" (MSE/MAE change, the labels' units) or
    "99.80% [-0.40, +0.00]" (top-1 agreement, its change in points), "cos 0.999987"."""
    if v is None or not math.isfinite(v.delta):
        return "—"
    lo, hi = v.delta_ci
    if v.metric == "accuracy":
        return f"{v.delta * 100:+.2f} [{lo * 100:+.2f}, {hi * 100:+.2f}]"
    if v.metric in ("mse", "mae"):
        return f"{v.delta:+.2g} [{lo:+.2g}, {hi:+.2g}]"
    if v.top1_agreement is not None:
        return f"{v.value:.2%} [{lo * 100:+.2f}, {hi * 100:+.2f}]"
    return f"cos {v.value:.6f}"


def metric_change(v: Verification | None, verified: bool = True) -> str:
    """The task's metric against fp32 in words, for the summary: "accuracy +0.10 points",
    "MSE 0.0123 vs fp32's 0.0121", "top-1 agreement with fp32 99.80%"."""
    if not verified:
        return NOT_VERIFIED
    if v is None or not math.isfinite(v.delta):
        return "unverified"
    if v.metric == "accuracy":
        return f"accuracy {v.delta * 100:+.2f} points"
    if v.metric in ("mse", "mae"):
        return f"{v.metric.upper()} {v.value:.4g} vs fp32's {v.reference_value:.4g}"
    if v.top1_agreement is not None:
        return f"top-1 agreement with fp32 {v.value:.2%} (no labels)"
    return f"cosine similarity with fp32 {v.value:.6f} (no labels)"


def _speedup_cell(c: CandidateResult) -> str:
    return "—" if c.speedup is None else speedup_words(c.speedup)


def timing_note(result: OptimizeResult) -> str:
    """What each speedup divides, with both baseline times, for under the table."""
    base = result.baseline
    label = TIMED_LABELS.get(base.timing or "", base.timing or "?")
    own = format_seconds(base.measurement.median_s) if base.measurement else "?"
    note = (
        f"vs baseline: {result.baseline_name}'s p50 / this p50, the baseline timed the same "
        f"way as the row: {label} rows against {own} ({label})"
    )
    if result.screening_baseline is not None:
        note += (
            f", screened rows against {format_seconds(result.screening_baseline.median_s)} "
            "(screened)"
        )
    return note + (
        "; alone = loaded in its own process, as deployed (the choice is made among these), "
        "screened = timed side by side with every candidate"
        if base.timing == "isolated"
        else ""
    )


def reason_lines(result: OptimizeResult) -> list[str]:
    """Why each candidate that was not accepted was rejected, failed or skipped (first,
    when no data was given, that nothing was verified)."""
    unverified = (
        [
            f"{NOT_VERIFIED}: the inputs were generated from the signature for timing only; "
            "exact candidates were checked against fp32 on them, approximate ones not accepted"
        ]
        if not result.verified
        else []
    )
    return unverified + [
        f"{c.name}: {c.verdict}: {c.reason}" for c in result.candidates if c.verdict != "accepted"
    ]


def summary_line(result: OptimizeResult) -> str:
    """One sentence: what was chosen and what it buys."""
    c = result.chosen
    change = metric_change(c.verification, result.verified)
    budget = "" if not result.verified else f" ({result.budget.describe(result.task)})"
    if c.name == result.baseline_name:
        speed = "the baseline itself"
    elif c.speedup is None:
        speed = f"speed against {result.baseline_name} unknown"
    else:
        timed = TIMED_LABELS.get(c.versus or "", c.versus or "?")
        speed = f"{speedup_words(c.speedup)} than {result.baseline_name} timed {timed}"
    return (
        f"chose {c.name}: {speed} for {result.target} at batch {result.batch_size}, "
        f"{change}{budget}"
    )


def accepted_count(results: Sequence[CandidateResult]) -> int:
    return sum(1 for r in results if r.verdict == "accepted")


def _quality(v: Verification | None) -> float | None:
    """The verified figure as "higher is better", for the Pareto front of any metric."""
    if v is None or not math.isfinite(v.value):
        return None
    return v.value if v.task.higher_is_better else -v.value
