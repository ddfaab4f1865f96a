"""Choosing the candidate: a pure function of the trial table, so it can be tested alone.

The rule: among the *accepted* trials (verified and within the accuracy budget; rejected,
failed and skipped ones are never eligible), the fastest for the target — lowest median
latency for ``latency``, highest samples/s for ``throughput``. Ties go to the more exact
candidate (exact, then numeric, then approximate), then to the faster, then to the earlier
one in the table. Two trials tie when their speeds differ by less than the tie margin or by
less than either one's measured run-to-run noise (capped at `MAX_NOISE_MARGIN`): a difference
the measurement cannot resolve must not buy an int8 model over an exact one.
No accepted trial with a measurement means no choice: `select` returns None.

>>> trials = [
...     Trial("eager", "accepted", "exact", latency_ms_p50=0.2, samples_per_s=5e3),
...     Trial("int8", "rejected", "approximate", latency_ms_p50=0.05, samples_per_s=2e4),
...     Trial("ort", "accepted", "numeric", latency_ms_p50=0.04, samples_per_s=2.5e4),
... ]
>>> select(trials, "latency")
'ort'
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Literal

Target = Literal["latency", "throughput"]
Verdict = Literal["accepted", "rejected", "failed", "skipped"]
TARGETS: tuple[Target, ...] = ("latency", "throughput")
VERDICTS: tuple[Verdict, ...] = ("accepted", "rejected", "failed", "skipped")
_EXACTNESS_RANK = {"exact": 0, "numeric": 1, "approximate": 2}
MAX_NOISE_MARGIN = 0.15  # noisier measurements than this do not widen a tie any further


@dataclasses.dataclass(frozen=True)
class Trial:
    """What selection needs to know about one candidate."""

    name: str
    verdict: Verdict
    exactness: str  # "exact" | "numeric" | "approximate"
    latency_ms_p50: float | None = None
    samples_per_s: float | None = None
    # The verified figure, higher is better: accuracy or agreement with fp32, or minus the
    # error (MSE, MAE) for regression; None where nothing was verified.
    accuracy: float | None = None
    noise: float = 0.0  # relative run-to-run noise of its speed (half the p10–p90 width)


def speed(trial: Trial, target: Target) -> float | None:
    """How fast `trial` is for `target`, larger is better (calls/s for latency, samples/s
    for throughput); None if unmeasured."""
    value = trial.latency_ms_p50 if target == "latency" else trial.samples_per_s
    if value is None or not math.isfinite(value) or value <= 0:
        return None
    return 1e3 / value if target == "latency" else value


def select(trials: Sequence[Trial], target: Target, *, tie_margin: float = 0.0) -> str | None:
    """The name of the fastest accepted trial for `target`, or None if none qualifies.

    Trials within `tie_margin` (a fraction, e.g. 0.03) of the fastest, or within their own
    or the fastest's `noise` (at most `MAX_NOISE_MARGIN`), count as tied with it: among
    them the more exact wins, then the faster, then the earlier in the table.
    """
    if target not in TARGETS:
        raise ValueError(f"target {target!r} is unknown; use latency or throughput")
    if not 0 <= tie_margin < 1:
        raise ValueError(f"tie_margin {tie_margin!r} must be a fraction in [0, 1)")
    eligible = [
        (index, trial, fast)
        for index, trial in enumerate(trials)
        if trial.verdict == "accepted" and (fast := speed(trial, target)) is not None
    ]
    if not eligible:
        return None
    _, leader, fastest = max(eligible, key=lambda item: (item[2], -item[0]))

    def margin(trial: Trial) -> float:
        noise = min(MAX_NOISE_MARGIN, max(trial.noise, leader.noise))
        return max(tie_margin, noise if math.isfinite(noise) else MAX_NOISE_MARGIN)

    tied = [item for item in eligible if item[2] >= fastest * (1 - margin(item[1]))]
    _, winner, _ = max(
        tied, key=lambda item: (-_EXACTNESS_RANK.get(item[1].exactness, 3), item[2], -item[0])
    )
    return winner.name


def pareto_front(trials: Sequence[Trial], target: Target) -> list[str]:
    """Accepted trials that no other accepted trial beats on both speed and accuracy."""
    points = [
        (t.name, speed(t, target), t.accuracy)
        for t in trials
        if t.verdict == "accepted" and speed(t, target) is not None and t.accuracy is not None
    ]
    front = []
    for name, fast, accuracy in points:
        dominated = any(
            s >= fast and a >= accuracy and (s > fast or a > accuracy)  # type: ignore[operator]
            for other, s, a in points
            if other != name
        )
        if not dominated:
            front.append(name)
    return front
