"""The result of `optimize`: one record per candidate, the choice, and its JSON form.

``report.json`` (schema_version 1) holds ``baseline``, ``chosen`` and ``candidates``; each
candidate has name, backend, settings, exactness, latency_ms_p50, latency_ms_p99,
samples_per_s, speedup, export_s, compile_s, accuracy, accuracy_delta with
accuracy_delta_ci, max_abs_error, max_rel_error, top1_agreement, verdict and reason.
Accuracies and deltas are fractions (0.005 = half a point).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jiasu.core.atomic import atomic_write_text
from jiasu.infer.backends.base import Candidate
from jiasu.infer.select import Trial, Verdict, pareto_front
from jiasu.infer.verify import CONFIDENCE, TOLERANCES, AccuracyBudget, Verification
from jiasu.measure.benchmark import Measurement, format_rate, format_seconds
from jiasu.measure.stats import Summary, percentile

SCHEMA_VERSION = 1


@dataclasses.dataclass(frozen=True)
class CandidateResult:
    """Everything measured and decided about one candidate."""

    candidate: Candidate
    verdict: Verdict
    reason: str
    export_s: float | None = None
    compile_s: float | None = None
    measurement: Measurement | None = None  # seconds per call at the run's batch size
    speedup: float | None = None  # baseline median / this median
    speedup_summary: Summary | None = None  # paired ratios baseline / this, per round
    verification: Verification | None = None
    # How the figures were taken: "isolated" (alone in its own process, the artifact as
    # `jiasu.load` reads it), "blocks" (in this process, in blocks, where no artifact can be
    # written) or "screening" (interleaved call by call with all candidates; not a finalist).
    timing: str | None = None
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
            v.accuracy if v else None,
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
            # p10–p90 of the per-round paired ratios baseline / this
            "speedup_interval": (
                [_num(self.speedup_summary.p10), _num(self.speedup_summary.p90)]
                if self.speedup_summary
                else None
            ),
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
            "accuracy": _num(v.accuracy) if v else None,
            "accuracy_delta": _num(v.accuracy_delta) if v else None,
            "accuracy_delta_ci": [_num(v.delta_ci[0]), _num(v.delta_ci[1])] if v else None,
            "accuracy_delta_confidence": CONFIDENCE if v else None,
            "max_abs_error": _num(v.max_abs_error) if v else None,
            "max_rel_error": _num(v.max_rel_error) if v else None,
            "top1_agreement": _num(v.top1_agreement) if v else None,
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


@dataclasses.dataclass(frozen=True)
class OptimizeResult:
    """What `optimize` found: every candidate, the baseline, the choice and where it ran."""

    model: str
    input_shape: tuple[int, ...]
    target: str
    batch_size: int
    threads: int
    budget: AccuracyBudget
    validation_samples: int
    candidates: tuple[CandidateResult, ...]
    baseline_name: str
    chosen_name: str
    environment: Mapping[str, Any]

    def get(self, name: str) -> CandidateResult:
        return next(c for c in self.candidates if c.name == name)

    @property
    def baseline(self) -> CandidateResult:
        return self.get(self.baseline_name)

    @property
    def chosen(self) -> CandidateResult:
        return self.get(self.chosen_name)

    def to_dict(self) -> dict[str, Any]:
        trials = [c.trial() for c in self.candidates]
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": "jiasu-optimize-report",
            "model": self.model,
            "input_shape": list(self.input_shape),
            "target": self.target,
            "batch_size": self.batch_size,
            "threads": self.threads,
            "budget": self.budget.to_dict(),
            "validation_samples": self.validation_samples,
            "baseline": self.baseline.to_dict(),
            "chosen": self.chosen.to_dict(),
            "candidates": [c.to_dict() for c in self.candidates],
            "pareto_front": pareto_front(trials, self.target),  # type: ignore[arg-type]
            "environment": dict(self.environment),
        }

    def write_json(self, path: Path) -> None:
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    def table_rows(self) -> list[tuple[str, ...]]:
        """Rows for `TABLE_COLUMNS`, one per candidate, the chosen one marked with ★."""
        return [_row(c, c.name == self.chosen_name) for c in self.candidates]


TABLE_COLUMNS = (
    "candidate", "p50", "p99", "samples/s", "speedup", "timed", "Δ acc [95% CI]", "verdict",
)  # fmt: skip
TIMED_LABELS = {  # report.json "timing" → the table's "timed" column
    "isolated": "alone",
    "blocks": "blocks",
    "screening": "screened",
    "interleaved": "mixed",
}


def _row(c: CandidateResult, chosen: bool) -> tuple[str, ...]:
    m, v = c.measurement, c.verification

    def ms(value: float | None) -> str:
        return format_seconds(value / 1e3) if value is not None else "—"

    delta = "—"
    if v is not None and math.isfinite(v.accuracy_delta):
        lo, hi = v.delta_ci
        delta = f"{v.accuracy_delta * 100:+.2f} [{lo * 100:+.2f}, {hi * 100:+.2f}]"
    return (
        ("★ " if chosen else "  ") + c.name,
        ms(c.latency_ms_p50),
        ms(c.latency_ms_p99),
        format_rate(m.items_per_s) if m else "—",
        f"{c.speedup:.2f}×" if c.speedup is not None else "—",
        TIMED_LABELS.get(c.timing or "", "—"),
        delta,
        c.verdict,
    )


def reason_lines(result: OptimizeResult) -> list[str]:
    """Why each candidate that was not accepted was rejected, failed or skipped."""
    return [
        f"{c.name}: {c.verdict}: {c.reason}" for c in result.candidates if c.verdict != "accepted"
    ]


def summary_line(result: OptimizeResult) -> str:
    """One sentence: what was chosen and what it buys."""
    c = result.chosen
    speed = f"{c.speedup:.2f}×" if c.speedup is not None else "?"
    v = c.verification
    delta = f"{v.accuracy_delta * 100:+.2f} points" if v else "unverified"
    metric = "latency" if result.target == "latency" else "throughput"
    return (
        f"chose {c.name}: {speed} the {metric} of {result.baseline_name} at batch "
        f"{result.batch_size}, accuracy {delta} ({result.budget.describe()})"
    )


def accepted_count(results: Sequence[CandidateResult]) -> int:
    return sum(1 for r in results if r.verdict == "accepted")
