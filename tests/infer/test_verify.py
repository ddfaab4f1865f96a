"""Verification: agreement measures, the accuracy budget and its bootstrap interval."""

from __future__ import annotations

import numpy as np
import pytest

from jiasu.core.errors import ConfigError
from jiasu.core.technique import Exactness
from jiasu.infer.verify import AccuracyBudget, bootstrap_delta_ci, judge, verify


def _logits(labels: np.ndarray, flip: int = 0) -> np.ndarray:
    """Logits whose argmax is the label, except for the first `flip` samples."""
    out = np.zeros((len(labels), 10), dtype=np.float32)
    out[np.arange(len(labels)), labels] = 5.0
    out[np.arange(flip), (labels[:flip] + 1) % 10] = 6.0
    return out


def test_budget_absolute_and_relative() -> None:
    assert AccuracyBudget().allowed_drop(0.9) == 0.005
    assert AccuracyBudget("relative", 0.01).allowed_drop(0.98) == pytest.approx(0.0098)
    assert "99%" in AccuracyBudget("relative", 0.01).describe()


@pytest.mark.parametrize(
    "kind,value",
    [
        ("percent", 0.1),
        ("absolute", -0.1),
        ("absolute", 1.5),
        ("absolute", float("nan")),
        ("relative", "0.1"),
    ],
)
def test_bad_budget_is_a_config_error(kind: str, value: object) -> None:
    with pytest.raises(ConfigError):
        AccuracyBudget(kind, value)  # type: ignore[arg-type]


def test_verify_measures_errors_agreement_and_delta() -> None:
    labels = np.arange(1000) % 10
    ref = _logits(labels)
    out = _logits(labels, flip=10)  # 10 of 1000 wrong: one point below
    v = verify(ref, out, labels)
    assert v.accuracy == 0.99 and v.reference_accuracy == 1.0
    assert v.accuracy_delta == pytest.approx(-0.01)
    assert v.top1_agreement == 0.99
    assert v.max_abs_error == pytest.approx(6.0)
    lo, hi = v.delta_ci
    assert lo <= -0.01 <= hi and hi < 0  # every draw loses some of the 10 flips... or all


def test_bootstrap_interval_is_zero_for_identical_and_covers_the_truth() -> None:
    rng = np.random.default_rng(1)
    ref = rng.random(2000) < 0.9
    assert bootstrap_delta_ci(ref, ref) == (0.0, 0.0)
    cand = ref.copy()
    cand[np.flatnonzero(ref)[:20]] = False  # exactly one point worse
    lo, hi = bootstrap_delta_ci(ref, cand)
    assert lo < -0.01 < hi <= 0.0


def test_judge_uses_tolerance_for_numeric_and_budget_for_approximate() -> None:
    labels = np.arange(1000) % 10
    ref = _logits(labels)
    close = verify(ref, ref + 1e-5, labels)
    assert judge(Exactness.NUMERIC, close, AccuracyBudget())[0]
    drifted = verify(ref, ref + 0.1, labels)  # same predictions, logits off by 0.1
    ok, reason = judge(Exactness.NUMERIC, drifted, AccuracyBudget())
    assert not ok and "tolerance" in reason
    assert judge(Exactness.APPROXIMATE, drifted, AccuracyBudget())[0]
    worse = verify(ref, _logits(labels, flip=10), labels)  # one point below
    ok, reason = judge(Exactness.APPROXIMATE, worse, AccuracyBudget())
    assert not ok and "budget" in reason
    assert judge(Exactness.APPROXIMATE, worse, AccuracyBudget("absolute", 0.02))[0]


def test_nan_outputs_are_rejected() -> None:
    labels = np.arange(100) % 10
    ref = _logits(labels)
    bad = ref.copy()
    bad[0, 0] = np.nan
    ok, reason = judge(Exactness.APPROXIMATE, verify(ref, bad, labels), AccuracyBudget(value=0.5))
    assert not ok and "NaN" in reason
