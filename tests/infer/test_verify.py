"""Verification: agreement measures, the accuracy budget and its bootstrap interval."""

from __future__ import annotations

import numpy as np
import pytest

from jiasu.core.errors import ConfigError
from jiasu.core.task import Task
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


# --- tasks, metrics and verification for any output shape ------------------------------


def test_task_is_inferred_from_labels_and_output_shape() -> None:
    assert Task.infer(np.array([0, 3, 1]), (3, 4)) == Task("classification", "accuracy", 4)
    assert Task.infer(np.array([0.0, 2.0]), (2, 5)).metric == "accuracy"  # whole floats
    assert Task.infer(np.array([0.5, 1.5]), (2,)) == Task("regression", "mse")
    assert Task.infer(np.ones((2, 3)), (2, 3), metric="MAE") == Task("regression", "mae")
    assert Task.infer(None, (2, 10)) == Task("agreement", "agreement", 10)
    assert Task.infer(None, (2, 128, 768)) == Task("agreement", "agreement")
    assert Task("regression", "mse").higher_is_better is False
    assert Task("classification", "accuracy").higher_is_better is True
    task = Task("classification", "accuracy", 10)
    assert Task.from_dict(task.to_dict()) == task


@pytest.mark.parametrize(
    "labels,shape,metric,words",
    [
        (None, (4, 10), "accuracy", "needs labels"),
        (np.array([0, 1, 2, 3]), (4, 1), None, "mse or mae"),  # whole numbers, one output
        (np.array([0, 1, 12, 3]), (4, 10), None, "label 12 at index 2"),
        (np.zeros(3), (4, 10), "mse", "4 samples"),
        (np.zeros((4, 2)), (4, 3), "mse", "shaped like the outputs"),
        (np.array([0.5, np.nan, 1.0, 2.0]), (4,), None, "sample 1 is NaN"),
        (np.zeros(4), (4, 1), "f1", "use accuracy"),
        (np.array([0.5, 1.5, 1.0, 2.0]), (4, 1), "accuracy", "class scores"),
    ],
)
def test_task_mismatches_are_one_sentence_config_errors(
    labels: np.ndarray | None, shape: tuple[int, ...], metric: str | None, words: str
) -> None:
    with pytest.raises(ConfigError, match=words) as info:
        Task.infer(labels, shape, metric=metric)
    assert "\n" not in str(info.value) and str(info.value).count(";") <= 1


def test_mnist_task_is_defined_once_in_the_mnist_module() -> None:
    from jiasu.data.mnist import INPUT_SHAPE, MNIST_TASK, NUM_CLASSES

    assert Task("classification", "accuracy", NUM_CLASSES) == MNIST_TASK
    assert INPUT_SHAPE == (1, 28, 28) and NUM_CLASSES == 10


def test_errors_and_cosine_for_any_output_shape_match_a_hand_computation() -> None:
    # two samples of (2, 2) outputs: per-sample cosine on the flattened four values
    ref = np.array([[[1.0, 0.0], [0.0, 0.0]], [[3.0, 4.0], [0.0, 0.0]]])
    out = np.array([[[0.0, 1.0], [0.0, 0.0]], [[3.0, 4.0], [0.0, 1.0]]])
    v = verify(ref, out)  # no labels: agreement with fp32 is the metric
    assert v.task.metric == "agreement" and v.top1_agreement is None
    assert v.max_abs_error == 1.0 and v.reference_scale == 4.0 and v.max_rel_error == 0.25
    cos2 = 25 / (5 * np.sqrt(26))  # sample 2: dot 25, norms 5 and sqrt(26); sample 1: 0
    assert v.cosine_similarity == pytest.approx((0 + cos2) / 2)  # the mean over samples
    assert v.min_cosine_similarity == pytest.approx(0.0)
    assert v.value == v.cosine_similarity and v.reference_value == 1.0
    lo, hi = v.delta_ci
    assert lo <= v.delta <= hi


def test_one_value_per_sample_uses_the_cosine_of_the_whole_column() -> None:
    ref, out = np.array([1.0, 2.0, 2.0]), np.array([1.0, 2.0, -2.0])
    v = verify(ref, out)
    assert v.cosine_similarity == pytest.approx((1 + 4 - 4) / 9)  # not each sample's sign


def test_regression_mse_and_mae_with_bootstrap_intervals_match_a_hand_computation() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0])
    ref = np.array([[1.5], [2.0], [2.0], [4.0]])  # errors 0.5, 0, -1, 0
    out = np.array([[1.0], [2.5], [2.0], [5.0]])  # errors 0, 0.5, -1, 1
    mse = verify(ref, out, y)  # float labels: regression, MSE
    assert mse.task.metric == "mse" and mse.accuracy is None and mse.top1_agreement is None
    assert mse.reference_value == pytest.approx((0.25 + 0 + 1 + 0) / 4)
    assert mse.value == pytest.approx((0 + 0.25 + 1 + 1) / 4)
    assert mse.delta == pytest.approx(1.0 / 4) and mse.worsening == pytest.approx(0.25)
    lo, hi = mse.delta_ci
    assert lo <= mse.delta <= hi
    mae = verify(ref, out, y, Task("regression", "mae"))
    assert mae.reference_value == pytest.approx(1.5 / 4) and mae.value == pytest.approx(2.5 / 4)
    assert mae.max_abs_error == 1.0 and mae.max_rel_error == pytest.approx(1 / 4)
    # (N, k) targets against (N, k) outputs: the mean over every value
    multi = verify(
        np.zeros((2, 3)), np.ones((2, 3)), np.full((2, 3), 2.0), Task("regression", "mse")
    )
    assert (multi.reference_value, multi.value) == (4.0, 1.0)


def test_bootstrap_interval_contains_the_point_delta_for_each_metric() -> None:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 5, size=400)
    ref = rng.normal(size=(400, 5))
    out = ref + rng.normal(scale=0.8, size=ref.shape)
    targets = rng.normal(size=(400, 5))
    for v in (
        verify(ref, out, labels),
        verify(ref, out, targets, Task("regression", "mse")),
        verify(ref, out, targets, Task("regression", "mae")),
        verify(ref, out),  # top-1 agreement
        verify(ref[:, :1], out[:, :1]),  # cosine of the column
    ):
        lo, hi = v.delta_ci
        assert lo <= v.delta <= hi, (v.task.metric, v.delta, v.delta_ci)
        assert lo < hi


def _int8_like(weights: np.ndarray) -> np.ndarray:
    """Symmetric per-output int8 quantization of a (in, out) weight matrix, dequantized."""
    scale = np.abs(weights).max(axis=0) / 127
    return np.round(weights / scale).clip(-127, 127) * scale


def test_regression_int8_perturbation_is_judged_against_a_relative_mse_budget() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 30))
    w = rng.normal(size=(30, 2))
    y = x @ w + rng.normal(scale=0.1, size=(2000, 2))  # the noise makes fp32's MSE ~0.01
    ref, out = x @ w, x @ _int8_like(w)
    v = verify(ref, out, y)
    assert v.task == Task("regression", "mse")
    expected_ref = float(((ref - y) ** 2).mean())
    expected = float(((out - y) ** 2).mean())
    assert (v.reference_value, v.value) == (pytest.approx(expected_ref), pytest.approx(expected))
    rise = expected / expected_ref - 1  # int8 rounding adds a few percent to the error
    assert 0.001 < rise < 0.5
    ok, reason = judge(Exactness.APPROXIMATE, v, AccuracyBudget("relative", rise * 2), v.task)
    assert ok and "MSE" in reason and "within budget" in reason
    ok, reason = judge(Exactness.APPROXIMATE, v, AccuracyBudget("relative", rise / 2))
    assert not ok and "over the budget" in reason and f"{rise / 2:.2%}" in reason
    # an absolute budget is in the metric's units
    assert judge(Exactness.APPROXIMATE, v, AccuracyBudget("absolute", v.delta * 1.01))[0]
    assert not judge(Exactness.APPROXIMATE, v, AccuracyBudget("absolute", v.delta * 0.99))[0]
    assert "in the metric's units" in AccuracyBudget().describe(v.task)
    # the numeric tolerance, not the budget, judges a numeric candidate: int8 is too far
    assert not judge(Exactness.NUMERIC, v, AccuracyBudget("relative", 0.9))[0]
    close = verify(ref, ref * (1 + 1e-7), y)
    assert judge(Exactness.NUMERIC, close, AccuracyBudget("relative", 0.0))[0]


def test_agreement_only_judging_for_classifier_shaped_outputs() -> None:
    labels = np.arange(1000) % 10  # only to build the logits: not given to verify
    ref = _logits(labels)
    v = verify(ref, _logits(labels, flip=4))  # 4 of 1000 top-1 flips: 0.4% disagreement
    assert v.task == Task("agreement", "agreement", 10) and v.accuracy is None
    assert v.top1_agreement == v.value == pytest.approx(0.996)
    assert v.delta_ci[0] <= v.delta <= v.delta_ci[1]
    ok, reason = judge(Exactness.APPROXIMATE, v, AccuracyBudget("absolute", 0.005))
    assert ok and "top-1 agreement with fp32 99.60%" in reason and "no labels" in reason
    ok, reason = judge(Exactness.APPROXIMATE, v, AccuracyBudget("absolute", 0.003))
    assert not ok and "over the budget" in reason and "0.30%" in reason


def test_agreement_only_judging_for_other_outputs_uses_cosine() -> None:
    rng = np.random.default_rng(1)
    ref = rng.normal(size=(64, 8, 16))  # e.g. hidden states (N, sequence, features)
    near = ref + rng.normal(scale=0.01, size=ref.shape)  # cosine ~ 0.99995
    far = ref + rng.normal(scale=0.5, size=ref.shape)  # cosine ~ 0.89
    budget = AccuracyBudget("absolute", 0.001)
    ok, reason = judge(Exactness.APPROXIMATE, verify(ref, near), budget)
    assert ok and "cosine similarity with fp32" in reason
    v = verify(ref, far)
    assert 0.85 < v.cosine_similarity < 0.93
    ok, reason = judge(Exactness.APPROXIMATE, v, budget)
    assert not ok and "cosine similarity" in reason and "over the budget" in reason


def test_unverified_approximate_candidates_are_rejected_and_exact_ones_checked() -> None:
    rng = np.random.default_rng(2)
    ref = rng.normal(size=(32, 10))  # outputs on inputs generated from the signature
    v = verify(ref, ref + 1e-7)
    ok, reason = judge(Exactness.APPROXIMATE, v, AccuracyBudget("absolute", 0.5), verified=False)
    assert not ok
    assert reason == (
        "accuracy not verified: no data was given, so approximate candidates (int8, bf16) "
        "are not accepted"
    )
    ok, reason = judge(Exactness.EXACT, v, AccuracyBudget(), verified=False)
    assert ok and "accuracy not verified" in reason
    ok, reason = judge(Exactness.EXACT, verify(ref, ref + 0.1), AccuracyBudget(), verified=False)
    assert not ok and "tolerance" in reason


def test_exact_candidate_with_nan_outputs_is_rejected() -> None:
    ref = np.random.default_rng(4).normal(size=(16, 3, 5))
    bad = ref.copy()
    bad[3, 1, 2] = np.nan
    v = verify(ref, bad)
    assert v.max_abs_error == np.inf and np.isnan(v.value)
    for exactness in (Exactness.EXACT, Exactness.NUMERIC):
        ok, reason = judge(exactness, v, AccuracyBudget(value=0.5))
        assert not ok and "NaN" in reason


def test_a_reference_with_nan_is_a_config_error() -> None:
    ref = np.ones((4, 3))
    ref[0, 0] = np.inf
    with pytest.raises(ConfigError, match="reference outputs contain NaN or infinity"):
        verify(ref, np.ones((4, 3)))
