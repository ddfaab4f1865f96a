"""Is the faster model still right? Agreement with eager fp32, and the task metric in budget.

Every candidate's outputs (N, ...) are compared with eager fp32's on the same inputs: max
absolute error, max relative error (to max |reference|), cosine similarity, and top-1
agreement where the outputs are class scores (N, C > 1). With labels, the task's metric
(`jiasu.core.task.Task`: accuracy, MSE or MAE) is measured for candidate and reference,
with a paired bootstrap interval of the difference. Without labels (task ``agreement``),
agreement with fp32 *is* the metric: top-1 agreement for classifier-shaped outputs,
cosine similarity otherwise.

Then `judge` decides by the candidate's declared exactness:

- *exact* and *numeric* candidates compute the same function, so their outputs must agree
  with eager fp32 within a `Tolerance` (max abs error, scaled by the output's magnitude,
  and top-1 agreement where there are classes);
- *approximate* candidates (int8, bf16) compute a different function, so the metric may
  worsen by at most the `AccuracyBudget`; with no data at all (inputs generated from the
  signature, for timing only) they are not accepted.

>>> budget = AccuracyBudget("relative", 0.01)  # MLPerf-style: keep 99% of fp32 accuracy
>>> round(budget.allowed_drop(0.98), 6)
0.0098
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from jiasu.core.errors import ConfigError
from jiasu.core.task import Task, classifier_shaped
from jiasu.core.technique import Exactness

BudgetKind = Literal["absolute", "relative"]
BOOTSTRAP_SAMPLES = 1000
CONFIDENCE = 0.95
UNVERIFIED_REASON = (
    "accuracy not verified: no data was given, so approximate candidates (int8, bf16) are "
    "not accepted"
)
_CHUNK_ELEMENTS = 4_000_000  # outputs are compared in row blocks of about this many values


@dataclasses.dataclass(frozen=True)
class AccuracyBudget:
    """How much an approximate candidate may worsen the task's metric against fp32.

    accuracy — ``absolute``: at most `value` (a fraction: 0.005 = 0.5 points) below fp32;
    ``relative``: at most `value` of fp32's accuracy (0.01 = keep 99% of it, MLPerf-style).
    mse, mae — ``absolute``: at most `value` above fp32's error, in the metric's units;
    ``relative``: at most `value` times fp32's error above it (0.01 = 1% more).
    agreement (no labels) — either kind: disagreement with fp32 (1 − top-1 agreement, or
    1 − cosine similarity) at most `value`.
    `value` is in [0, 1) for every kind and metric.
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

    def allowed_worsening(self, reference_value: float, task: Task) -> float:
        """The largest worsening of `task`'s metric accepted against fp32's
        `reference_value`: a drop for accuracy and agreement, a rise for mse and mae."""
        if task.metric == "agreement":  # fp32 agrees with itself: relative == absolute
            return self.value
        if self.kind == "absolute":
            return self.value
        return self.value * abs(reference_value)

    def describe(self, task: Task | None = None) -> str:
        """The budget in words for `task`'s metric (default: accuracy)."""
        metric = task.metric if task is not None else "accuracy"
        if metric == "agreement":
            return (
                f"disagreement with fp32 (1 − top-1 agreement or 1 − cosine) at most "
                f"{self.value:.2%}"
            )
        if metric in ("mse", "mae"):
            name = metric.upper()
            if self.kind == "absolute":
                return f"{name} at most {self.value:g} above fp32's, in the metric's units"
            return f"{name} at most {self.value:.2%} above fp32's"
        if self.kind == "absolute":
            return f"at most {self.value * 100:.2f} points below fp32"
        return f"at least {(1 - self.value) * 100:.4g}% of fp32 accuracy"

    def to_dict(self, task: Task | None = None) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "value": self.value,
            "metric": task.metric if task is not None else "accuracy",
            "description": self.describe(task),
        }


def default_budget(task: Task) -> AccuracyBudget:
    """The budget when the user states none: half a point of accuracy, 0.5% disagreement
    with fp32, or 1% more error (relative) for mse and mae, whose units are the user's."""
    if task.metric in ("mse", "mae"):
        return AccuracyBudget("relative", 0.01)
    return AccuracyBudget()


@dataclasses.dataclass(frozen=True)
class Tolerance:
    """Agreement an exact or numeric candidate must reach against eager fp32 outputs.

    ``max_abs_error <= atol + rtol * max|reference|`` and, for class scores,
    ``top1_agreement >= min_top1``.
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
    """A candidate's outputs against the reference's, and the task metric on the labels.

    `max_rel_error` is max |Δ| / max |reference|: relative to the outputs' scale, since
    per-element relative errors explode near zero. `cosine_similarity` is the *mean* over
    samples of the cosine between each sample's flattened outputs (`min_cosine_similarity`
    the worst sample); where each sample has a single value, (N,) or (N, 1), it is the
    cosine between the two whole (N,) columns instead. `top1_agreement` is None unless the
    outputs are class scores (N, C > 1) and the task is not regression.

    `value` is the task's metric for the candidate (accuracy, MSE, MAE, or for the
    agreement task top-1 agreement / cosine similarity with fp32), `reference_value` the
    same for fp32 (1.0 for agreement), `delta` = value − reference_value, and `delta_ci`
    its paired bootstrap interval at `CONFIDENCE`. NaN where the outputs are not finite.
    """

    n: int
    task: Task
    value: float
    reference_value: float
    delta: float
    delta_ci: tuple[float, float]
    max_abs_error: float
    max_rel_error: float
    cosine_similarity: float
    min_cosine_similarity: float
    top1_agreement: float | None
    reference_scale: float  # max |reference output|

    @property
    def metric(self) -> str:
        return self.task.metric

    @property
    def accuracy(self) -> float | None:
        """The candidate's accuracy (a fraction); None unless the metric is accuracy."""
        return self.value if self.metric == "accuracy" else None

    @property
    def reference_accuracy(self) -> float | None:
        return self.reference_value if self.metric == "accuracy" else None

    @property
    def accuracy_delta(self) -> float | None:
        return self.delta if self.metric == "accuracy" else None

    @property
    def worsening(self) -> float:
        """How much worse than fp32 the metric is (> 0 worse): a drop for accuracy and
        agreement, a rise for mse and mae."""
        return -self.delta if self.task.higher_is_better else self.delta

    @property
    def agreement_measure(self) -> str:
        """What agreement with fp32 is measured by: "top-1 agreement" or "cosine similarity"."""
        return "top-1 agreement" if self.top1_agreement is not None else "cosine similarity"


def verify(
    reference: np.ndarray,
    outputs: np.ndarray,
    labels: np.ndarray | None = None,
    task: Task | None = None,
) -> Verification:
    """Compare `outputs` (N, ...) with `reference` (N, ...), and both with `labels`.

    `task` defaults to `Task.infer(labels, reference.shape)`: accuracy for class indices
    (N,) with outputs (N, C > 1), MSE for float targets, agreement with fp32 without
    labels. Labels that do not fit the task, or a reference that is not finite, are a
    ConfigError.
    """
    reference, outputs = np.asarray(reference), np.asarray(outputs)
    if outputs.shape != reference.shape:
        raise ConfigError(
            f"candidate outputs have shape {outputs.shape} but fp32 gives {reference.shape}"
        )
    if reference.ndim == 0:
        raise ConfigError("the model's output is a scalar; it needs a batch axis first")
    task = task if task is not None else Task.infer(labels, reference.shape)
    targets = task.check_labels(labels, reference.shape)
    n = int(reference.shape[0])
    stats = _compare(reference, outputs)
    classes = task.kind != "regression" and classifier_shaped(reference.shape)
    if not stats.finite:
        nan = math.nan
        top1 = 0.0 if classes else None
        ref_value = _reference_value(task, reference, targets)
        return Verification(
            n, task, nan, ref_value, nan, (nan, nan), math.inf, math.inf, nan, nan, top1,
            stats.scale,
        )  # fmt: skip
    # (N,) 1.0 where the candidate's top class is fp32's; None without classes
    agree = (
        (reference.argmax(axis=1) == outputs.argmax(axis=1)).astype(np.float64) if classes else None
    )
    top1 = _mean(agree) if agree is not None else None
    cosine = stats.cosine
    if task.metric == "agreement" and agree is not None:
        value, ref_value = _mean(agree), 1.0
        ci = paired_bootstrap_ci(agree - 1.0)
    elif task.metric == "agreement":
        value, ref_value = cosine.mean, 1.0
        ci = cosine.interval
    else:
        ref_score = _scores(task, reference, targets)
        out_score = _scores(task, outputs, targets)
        value, ref_value = _mean(out_score), _mean(ref_score)
        ci = paired_bootstrap_ci(out_score - ref_score)
    return Verification(
        n=n,
        task=task,
        value=value,
        reference_value=ref_value,
        delta=value - ref_value,
        delta_ci=ci,
        max_abs_error=stats.max_abs,
        max_rel_error=stats.max_abs / stats.scale if stats.scale > 0 else stats.max_abs,
        cosine_similarity=cosine.mean,
        min_cosine_similarity=cosine.minimum,
        top1_agreement=top1,
        reference_scale=stats.scale,
    )


@dataclasses.dataclass(frozen=True)
class _Cosine:
    mean: float
    minimum: float
    interval: tuple[float, float]  # of mean − 1 (the agreement metric's delta)


@dataclasses.dataclass(frozen=True)
class _Stats:
    finite: bool
    max_abs: float
    scale: float
    cosine: _Cosine


def _compare(reference: np.ndarray, outputs: np.ndarray) -> _Stats:
    """Max |Δ|, max |reference| and the cosines, in float64 row blocks (bounded memory)."""
    n = reference.shape[0]
    ref2, out2 = reference.reshape(n, -1), outputs.reshape(n, -1)  # (N, D) per sample
    d = ref2.shape[1]
    rows = max(1, _CHUNK_ELEMENTS // max(d, 1))
    max_abs = scale = 0.0
    dots, ref_sq, out_sq = np.zeros(n), np.zeros(n), np.zeros(n)
    for start in range(0, n, rows):
        r = ref2[start : start + rows].astype(np.float64)
        o = out2[start : start + rows].astype(np.float64)
        if not np.isfinite(r).all():
            raise ConfigError(
                "the eager fp32 reference outputs contain NaN or infinity on these inputs, so "
                "no candidate can be compared with it; check the model and its inputs"
            )
        if not np.isfinite(o).all():
            nan = math.nan
            return _Stats(False, math.inf, scale, _Cosine(nan, nan, (nan, nan)))
        if r.size:
            max_abs = max(max_abs, float(np.abs(o - r).max()))
            scale = max(scale, float(np.abs(r).max()))
        stop = start + r.shape[0]
        dots[start:stop] = np.einsum("ij,ij->i", r, o)
        ref_sq[start:stop] = np.einsum("ij,ij->i", r, r)
        out_sq[start:stop] = np.einsum("ij,ij->i", o, o)
    return _Stats(True, max_abs, scale, _cosines(dots, ref_sq, out_sq, per_sample=d > 1))


def _cosines(
    dots: np.ndarray, ref_sq: np.ndarray, out_sq: np.ndarray, *, per_sample: bool
) -> _Cosine:
    """Mean and min per-sample cosine, with the bootstrap interval of mean − 1; with one
    value per sample, the cosine of the whole columns (its interval from resampled sums)."""
    n = dots.shape[0]
    if n == 0:
        nan = math.nan
        return _Cosine(nan, nan, (nan, nan))
    if per_sample:
        cos = _cosine(dots, ref_sq, out_sq)
        return _Cosine(float(cos.mean()), float(cos.min()), paired_bootstrap_ci(cos - 1.0))
    whole = float(_cosine(dots.sum(), ref_sq.sum(), out_sq.sum()))
    columns = np.stack([dots, ref_sq, out_sq], axis=1)  # (N, 3): sums resampled together

    def statistic(means: np.ndarray) -> np.ndarray:
        return _cosine(means[:, 0], means[:, 1], means[:, 2]) - 1.0

    return _Cosine(whole, whole, _bootstrap(columns, statistic))


def _cosine(dot: Any, ref_sq: Any, out_sq: Any) -> np.ndarray:
    """dot / (|r| |o|), clipped to [-1, 1]; 1 where both are zero, 0 where one is."""
    dot, ref_sq, out_sq = np.asarray(dot), np.asarray(ref_sq), np.asarray(out_sq)
    denom = np.sqrt(ref_sq * out_sq)
    both_zero = (ref_sq == 0) & (out_sq == 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where(
            denom > 0, dot / np.where(denom > 0, denom, 1.0), np.where(both_zero, 1.0, 0.0)
        )
    return np.clip(cos, -1.0, 1.0)


def _scores(task: Task, outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """The metric per sample (N,): correct (0/1) for accuracy, the sample's mean squared
    or absolute error for mse and mae. Their mean over samples is the metric."""
    n = outputs.shape[0]
    if task.metric == "accuracy":
        return (outputs.argmax(axis=1) == targets).astype(np.float64)
    diff = outputs.reshape(n, -1).astype(np.float64) - targets.reshape(n, -1)
    return (diff**2 if task.metric == "mse" else np.abs(diff)).mean(axis=1)


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else math.nan


def _reference_value(task: Task, reference: np.ndarray, targets: np.ndarray) -> float:
    if task.metric == "agreement":
        return 1.0
    return _mean(_scores(task, reference, targets))


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
    return paired_bootstrap_ci(diff, samples=samples, confidence=confidence, seed=seed)


def paired_bootstrap_ci(
    per_sample_delta: np.ndarray,
    *,
    samples: int = BOOTSTRAP_SAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile interval of the mean of per-sample differences (candidate − reference),
    the N samples resampled with replacement, pairs kept together. It always contains
    the mean itself unless the draws all miss it (they cannot for a constant delta)."""
    column = np.asarray(per_sample_delta, dtype=np.float64).reshape(-1, 1)
    return _bootstrap(column, lambda means: means[:, 0], samples, confidence, seed)


def _bootstrap(
    columns: np.ndarray,
    statistic: Callable[[np.ndarray], np.ndarray],
    samples: int = BOOTSTRAP_SAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile interval of `statistic` over bootstrap draws of the rows of `columns`
    (N, k): each draw's column means (draws, k) go in, one value per draw comes out."""
    n = columns.shape[0]
    if n == 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    means = np.empty((samples, columns.shape[1]))
    chunk = max(1, 2_000_000 // n)  # bound the index matrix to ~16 MB
    for start in range(0, samples, chunk):
        stop = min(samples, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = columns[idx].mean(axis=1)
    values = statistic(means)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return (float(low), float(high))


def judge(
    exactness: Exactness,
    result: Verification,
    budget: AccuracyBudget,
    task: Task | None = None,
    *,
    verified: bool = True,
) -> tuple[bool, str]:
    """Accept or reject a candidate; the reason is one sentence for the report.

    `task` defaults to the verification's own (and must match it). `verified` False means
    no data was given: the inputs were generated from the signature for timing only, so
    exact and numeric candidates are still held to their tolerance on them, but
    approximate ones are rejected (`UNVERIFIED_REASON`). Exact and numeric candidates are
    held to the budget too where the metric counts discrete predictions (accuracy, top-1
    agreement), since a flip within tolerance is still a flip; for continuous metrics the
    tolerance already bounds the change.
    """
    task = task if task is not None else result.task
    if (task.kind, task.metric) != (result.task.kind, result.task.metric):
        raise ConfigError(
            f"the verification measured {result.task.metric} but the task is {task.metric}; "
            "verify with the same task"
        )
    if not math.isfinite(result.max_abs_error):
        return False, "outputs contain NaN or infinity"
    tolerance = TOLERANCES.get(exactness)
    if tolerance is None and not verified:
        return False, UNVERIFIED_REASON
    if tolerance is not None:
        bound = tolerance.atol + tolerance.rtol * result.reference_scale
        if result.max_abs_error > bound:
            return False, (
                f"{exactness.value} candidate differs from fp32 by up to "
                f"{result.max_abs_error:.2e}, above its tolerance {bound:.2e}"
            )
        top1 = result.top1_agreement
        if top1 is not None and top1 < tolerance.min_top1:
            return False, (
                f"{exactness.value} candidate agrees with fp32 on {top1:.2%} "
                f"of top-1 predictions, below {tolerance.min_top1:.1%}"
            )
        if not verified:
            return True, (
                f"{exactness.value}: agrees with fp32 within tolerance on inputs generated "
                "from the signature (accuracy not verified: no data)"
            )
        discrete = task.metric == "accuracy" or (task.metric == "agreement" and top1 is not None)
        if not discrete:
            return True, f"{exactness.value}: agrees with fp32 within tolerance"
    allowed = budget.allowed_worsening(result.reference_value, task)
    no_labels = "; no labels, so accuracy was not measured" if task.metric == "agreement" else ""
    if result.worsening > allowed + 1e-12:
        return False, f"{_change(result)}, over the budget ({budget.describe(task)}){no_labels}"
    if tolerance is not None:
        return True, f"{exactness.value}: agrees with fp32 within tolerance"
    if task.metric == "accuracy":
        return True, f"approximate: {result.delta * 100:+.2f} points, within budget"
    return True, (
        f"approximate: {_change(result)}, within budget ({budget.describe(task)}){no_labels}"
    )


def _change(result: Verification) -> str:
    """The metric against fp32 in words, e.g. "accuracy 1.00 points below fp32"."""
    metric = result.task.metric
    if metric == "accuracy":
        return f"accuracy {-result.delta * 100:.2f} points below fp32"
    if metric == "agreement":
        if result.top1_agreement is not None:
            return f"top-1 agreement with fp32 {result.value:.2%}"
        return f"cosine similarity with fp32 {result.value:.6f}"
    name, ref = metric.upper(), result.reference_value
    rise = f" ({result.delta / ref:+.2%})" if ref > 0 else ""
    return f"{name} {result.value:.4g} against fp32's {ref:.4g}{rise}"
