"""Is the faster model still right? Output agreement with fp32 and an accuracy budget.

Two checks, chosen by the candidate's declared exactness:

- *exact* and *numeric* candidates compute the same function, so their logits must agree
  with eager fp32 within a `Tolerance` (max abs error, scaled by the output's magnitude,
  and top-1 agreement);
- *approximate* candidates (int8, bf16) compute a different function, so their top-1
  accuracy on labelled held-out data must stay within the `AccuracyBudget`.

Every candidate also gets both measurements in the report, with a paired bootstrap
confidence interval for its accuracy change.

>>> budget = AccuracyBudget("relative", 0.01)  # MLPerf-style: keep 99% of fp32 accuracy
>>> round(budget.allowed_drop(0.98), 6)
0.0098
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal

import numpy as np

from jiasu.core.errors import ConfigError
from jiasu.core.technique import Exactness

BudgetKind = Literal["absolute", "relative"]
BOOTSTRAP_SAMPLES = 1000
CONFIDENCE = 0.95


@dataclasses.dataclass(frozen=True)
class AccuracyBudget:
    """How much top-1 accuracy an approximate candidate may lose against fp32.

    ``absolute``: at most `value` accuracy (a fraction: 0.005 = 0.5 points) below fp32.
    ``relative``: at most `value` of fp32's accuracy (0.01 = keep 99% of it, MLPerf-style).
    """

    kind: BudgetKind = "absolute"
    value: float = 0.005

    def __post_init__(self) -> None:
        if self.kind not in ("absolute", "relative"):
            raise ConfigError(f"budget kind {self.kind!r} is unknown; use absolute or relative")
        value = self.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"accuracy budget {value!r} is not a number; use e.g. 0.005")
        if not math.isfinite(value) or not 0 <= value < 1:
            raise ConfigError(
                f"accuracy budget {value!r} is out of range; use a fraction in [0, 1), "
                f"e.g. 0.005 for half a point"
            )

    def allowed_drop(self, baseline_accuracy: float) -> float:
        """The largest accuracy drop (as a fraction) this budget accepts."""
        return self.value if self.kind == "absolute" else self.value * baseline_accuracy

    def describe(self) -> str:
        if self.kind == "absolute":
            return f"at most {self.value * 100:.2f} points below fp32"
        return f"at least {(1 - self.value) * 100:.4g}% of fp32 accuracy"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "value": self.value, "description": self.describe()}


@dataclasses.dataclass(frozen=True)
class Tolerance:
    """Agreement an exact or numeric candidate must reach against eager fp32 logits.

    ``max_abs_error <= atol + rtol * max|reference|`` and ``top1_agreement >= min_top1``.
    """

    atol: float
    rtol: float
    min_top1: float

    def to_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


TOLERANCES: dict[Exactness, Tolerance] = {
    Exactness.EXACT: Tolerance(atol=1e-4, rtol=1e-5, min_top1=0.999),
    Exactness.NUMERIC: Tolerance(atol=1e-3, rtol=1e-4, min_top1=0.998),
}


@dataclasses.dataclass(frozen=True)
class Verification:
    """A candidate's outputs against the reference's, and its accuracy against the labels.

    `max_rel_error` is max |Δ| / max |reference|: relative to the logits' scale, since
    per-element relative errors explode near zero. `accuracy_delta` is candidate minus
    reference accuracy (a fraction), with a paired bootstrap interval `delta_ci`.
    """

    n: int
    accuracy: float
    reference_accuracy: float
    accuracy_delta: float
    delta_ci: tuple[float, float]
    max_abs_error: float
    max_rel_error: float
    top1_agreement: float
    reference_scale: float  # max |reference logit|


def verify(reference: np.ndarray, outputs: np.ndarray, labels: np.ndarray) -> Verification:
    """Compare `outputs` (N, classes) with `reference` (N, classes) and with `labels` (N,)."""
    if outputs.shape != reference.shape:
        raise ConfigError(
            f"candidate outputs have shape {outputs.shape} but fp32 gives {reference.shape}"
        )
    ref = reference.astype(np.float64)
    out = outputs.astype(np.float64)
    if not np.isfinite(out).all():
        nan = float("nan")
        return Verification(len(labels), 0.0, 0.0, nan, (nan, nan), math.inf, math.inf, 0.0, 0.0)
    max_abs = float(np.abs(out - ref).max()) if ref.size else 0.0
    scale = float(np.abs(ref).max()) if ref.size else 0.0
    ref_top1, out_top1 = ref.argmax(axis=1), out.argmax(axis=1)
    ref_correct, out_correct = ref_top1 == labels, out_top1 == labels
    return Verification(
        n=int(labels.shape[0]),
        accuracy=float(out_correct.mean()),
        reference_accuracy=float(ref_correct.mean()),
        accuracy_delta=float(out_correct.mean() - ref_correct.mean()),
        delta_ci=bootstrap_delta_ci(ref_correct, out_correct),
        max_abs_error=max_abs,
        max_rel_error=max_abs / scale if scale > 0 else max_abs,
        top1_agreement=float((ref_top1 == out_top1).mean()),
        reference_scale=scale,
    )


def bootstrap_delta_ci(
    reference_correct: np.ndarray,
    candidate_correct: np.ndarray,
    *,
    samples: int = BOOTSTRAP_SAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile interval of the paired accuracy difference, resampling the test set.

    Each bootstrap draw resamples the N test items with replacement and keeps the pairing
    (the same items for both models), so the interval reflects which items flipped.

    >>> ref = np.array([True] * 90 + [False] * 10)
    >>> lo, hi = bootstrap_delta_ci(ref, ref)
    >>> (lo, hi)
    (0.0, 0.0)
    """
    diff = candidate_correct.astype(np.int8) - reference_correct.astype(np.int8)  # (N,) ∈ {-1,0,1}
    n = diff.shape[0]
    if n == 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    means = np.empty(samples)
    chunk = max(1, 2_000_000 // n)  # bound the index matrix to ~16 MB
    for start in range(0, samples, chunk):
        stop = min(samples, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = diff[idx].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return (float(low), float(high))


def judge(exactness: Exactness, result: Verification, budget: AccuracyBudget) -> tuple[bool, str]:
    """Accept or reject a candidate; the reason is one sentence for the report."""
    if not math.isfinite(result.max_abs_error):
        return False, "outputs contain NaN or infinity"
    tolerance = TOLERANCES.get(exactness)
    if tolerance is not None:
        bound = tolerance.atol + tolerance.rtol * result.reference_scale
        if result.max_abs_error > bound:
            return False, (
                f"{exactness.value} candidate differs from fp32 by up to "
                f"{result.max_abs_error:.2e}, above its tolerance {bound:.2e}"
            )
        if result.top1_agreement < tolerance.min_top1:
            return False, (
                f"{exactness.value} candidate agrees with fp32 on {result.top1_agreement:.2%} "
                f"of top-1 predictions, below {tolerance.min_top1:.1%}"
            )
    drop = -result.accuracy_delta
    allowed = budget.allowed_drop(result.reference_accuracy)
    if drop > allowed + 1e-12:
        return False, (
            f"accuracy {drop * 100:.2f} points below fp32, over the budget ({budget.describe()})"
        )
    if tolerance is not None:
        return True, f"{exactness.value}: agrees with fp32 within tolerance"
    return True, f"approximate: {result.accuracy_delta * 100:+.2f} points, within budget"
