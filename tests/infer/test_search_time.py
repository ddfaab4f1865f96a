"""What bounds a search's time: exact candidates built first, a time budget, and the
ONNX Runtime static int8 that its makers advise against for transformers."""

from __future__ import annotations

import importlib
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import jiasu
from jiasu.cli.main import main
from jiasu.core.errors import ConfigError
from jiasu.core.signature import InputSignature
from jiasu.infer import OptimizeConfig
from jiasu.infer.backends import BACKENDS, BuildContext, ModelSource
from jiasu.models.adapter import CallAdapter

pytest.importorskip("onnxruntime")

FAST = {"backends": ("torch", "onnxruntime"), "isolate": False, "measure_s": 0.2}


def _table() -> tuple[nn.Module, np.ndarray, np.ndarray]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 3)).eval()
    x = np.random.default_rng(0).standard_normal((64, 12)).astype(np.float32)
    with torch.no_grad():
        y = model(torch.from_numpy(x)).argmax(1).numpy()
    return model, x, y


def test_exact_candidates_are_built_before_the_quantized_ones() -> None:
    model, x, y = _table()
    result = jiasu.optimize(model, x[:2], data=x, labels=y, **FAST)  # type: ignore[arg-type]
    phases = [k.removeprefix("build and verify ") for k in result.report.phase_s]
    built = [p for p in phases if p.startswith(("onnxruntime", "torch-"))]
    quantized = [i for i, p in enumerate(built) if "int8" in p]
    assert quantized and min(quantized) > max(i for i, p in enumerate(built) if "int8" not in p), (
        built
    )
    assert phases[0] == "baseline" and phases[-1] == "total"
    assert result.report.phase_s["total"] > 0
    # the report's candidate order stays the backends' own
    names = [c.name for c in result.report.candidates]
    assert names.index("onnxruntime-int8-dynamic") > names.index("onnxruntime")


def test_a_spent_time_budget_leaves_the_rest_unbuilt_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No build may start once this share of the budget is spent. At 0 the budget is spent
    # before the first candidate however fast the machine is (at 1 ms and the default
    # share a quiet CI machine built one: its baseline took under 0.7 ms).
    monkeypatch.setattr(importlib.import_module("jiasu.infer.optimize"), "BUILD_SHARE", 0.0)
    model, x, y = _table()
    result = jiasu.optimize(
        model,
        x[:2],
        data=x,
        labels=y,
        time_budget_s=1e-3,
        **FAST,  # type: ignore[arg-type]
    )
    others = [c for c in result.report.candidates if c.name != "torch-eager"]
    assert others and all(c.verdict == "skipped" for c in others), [
        (c.name, c.verdict, c.reason) for c in others
    ]
    assert all("time budget" in c.reason and "raise" in c.reason for c in others)
    assert result.chosen.name == "torch-eager"


@pytest.mark.parametrize("bad", [0, -5, float("inf"), float("nan"), True, "10"])
def test_a_bad_time_budget_is_one_sentence(bad: object) -> None:
    with pytest.raises(ConfigError, match=r"time budget .* is invalid; use seconds > 0"):
        OptimizeConfig(time_budget_s=bad)  # type: ignore[arg-type]


def test_the_cli_refuses_a_time_budget_below_one_second(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["optimize", "mlp", "--time-budget", "0"]) == 2
    assert "--time-budget" in capsys.readouterr().err


def _tiny_bert() -> nn.Module:
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=100, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64, num_labels=3,
    )  # fmt: skip
    return BertForSequenceClassification(config).eval()


def _context(module: nn.Module, signature: InputSignature, tmp: Path) -> BuildContext:
    source = ModelSource("torch", signature, "test model", module)
    calibration = tuple(signature.generate(8))
    return BuildContext(source, tmp, 2, 1, "latency", calibration)


def test_onnxruntime_static_int8_is_proposed_but_not_built_for_a_transformer(
    tmp_path: Path,
) -> None:
    pytest.importorskip("transformers")
    signature = InputSignature.parse("input_ids:int64[B,16],attention_mask:int64[B,16]")
    ctx = _context(CallAdapter(_tiny_bert(), signature), signature, tmp_path)
    assert ctx.attention
    static = [c for c in BACKENDS.get("onnxruntime")().candidates(ctx) if "static" in c.name]
    assert static and all(c.skip and "advises dynamic" in c.skip for c in static)
    ctx.named = frozenset({"onnxruntime"})  # named by the user: tried anyway
    static = [c for c in BACKENDS.get("onnxruntime")().candidates(ctx) if "static" in c.name]
    assert static and all(c.skip is None for c in static)
    # a network without attention keeps its static int8 candidates
    mlp, _, _ = _table()
    plain = _context(mlp, InputSignature.from_shape((12,)), tmp_path)
    assert not plain.attention
    assert all(c.skip is None for c in BACKENDS.get("onnxruntime")().candidates(plain))


def test_the_timing_alone_takes_fewer_rounds_of_calls_that_take_seconds() -> None:
    from jiasu.infer.backends.base import Candidate, Exactness
    from jiasu.infer.optimize import (
        MAX_ROUNDS_ALONE,
        MIN_ROUNDS_ALONE,
        MIN_ROUNDS_ALONE_SLOW,
        _rounds,
    )
    from jiasu.infer.report import CandidateResult
    from jiasu.measure.isolated import SLOW_CALL_S

    names = ["eager", "onnxruntime", "openvino", "torch-optimized"]
    records = {
        n: CandidateResult(Candidate(n, "torch", {}, Exactness.EXACT), "accepted", "")
        for n in names
    }
    # not screened: the calls' seconds are guessed from the validation pass
    assert _rounds(records, names, 3.0, call_guess_s=0.001) == MAX_ROUNDS_ALONE
    assert _rounds(records, names, 3.0, call_guess_s=0.2) == MIN_ROUNDS_ALONE  # BERT-base b32
    slow = _rounds(records, names, 3.0, call_guess_s=3.5)  # ViT-B/16 at batch 32
    assert slow == MIN_ROUNDS_ALONE_SLOW < MIN_ROUNDS_ALONE
    # just under the slow mark, the usual floor
    assert _rounds(records, names, 3.0, call_guess_s=0.9 * SLOW_CALL_S) == MIN_ROUNDS_ALONE


def test_verification_runs_the_run_batch_first_so_the_screening_needs_no_warm_up() -> None:
    from jiasu.infer.optimize import TIMED_VERIFICATION_S, _evaluate, _repeats

    seen: list[int] = []
    pause = {"s": 0.0}

    def runner(x: np.ndarray) -> np.ndarray:
        seen.append(len(x))
        time.sleep(pause["s"])
        return x * 2

    x = np.arange(70, dtype=np.float32).reshape(70, 1)
    fast = _evaluate(runner, (x,), 32, 5)
    assert seen == [5, 32, 32, 1]  # the run's batch, then steps of the evaluation batch
    np.testing.assert_array_equal(fast.outputs, x * 2)
    assert fast.warm_call_s is None
    seen.clear()
    assert _evaluate(runner, (x[:3],), 32, 5).warm_call_s is None  # fewer than the batch
    assert seen == [3]
    # A slow first call: the second call is of the run's batch too, and timed (warm).
    seen.clear()
    pause["s"] = TIMED_VERIFICATION_S
    slow = _evaluate(runner, (x,), 32, 5)
    assert seen == [5, 5, 32, 28]
    np.testing.assert_array_equal(slow.outputs, x * 2)
    assert slow.warm_call_s is not None and slow.warm_call_s >= TIMED_VERIFICATION_S
    seen.clear()
    assert _evaluate(runner, (x[:8],), 32, 5).warm_call_s is None  # no second batch of 5
    assert seen == [5, 3]
    # A slow call at a run's batch of 8 or more: the rest in batches of that size too (no
    # new shape for a runner that pays at each, such as OpenVINO's), the last few alone.
    seen.clear()
    assert _evaluate(runner, (x[:30],), 32, 8).warm_call_s is not None
    assert seen == [8, 8, 8, 6]
    calls: list[str] = []
    cases = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    _repeats(cases, 0.1, warm_up=False)
    assert calls == ["a", "b"]  # one timed call each
    calls.clear()
    _repeats(cases, 0.1)
    assert calls == ["a", "a", "b", "b"]  # a warm-up call, then a timed one


def test_a_spinning_pool_reuses_the_verification_of_the_same_outputs(tmp_path: Path) -> None:
    from jiasu.core.task import Task
    from jiasu.infer.optimize import Check, _build_and_verify, _Built, _evaluate
    from jiasu.infer.verify import AccuracyBudget

    model, x, y = _table()
    # ONNX Runtime with a spinning pool computes what it computes without: the same
    # kernels on the same threads, so one batch checks it and the rest is not run again.
    result = jiasu.optimize(
        model, x[:2], data=x, labels=y, threads=2, batch_size=1,
        backends=("torch", "torch_optimized", "onnxruntime"), isolate=False, measure_s=0.2,
    )  # type: ignore[arg-type]  # fmt: skip
    records = {c.name: c for c in result.report.candidates}
    spin, plain = records["onnxruntime-spin"], records["onnxruntime"]
    assert "as onnxruntime's: the same outputs, bit for bit" in spin.reason
    assert spin.verification == plain.verification and spin.verdict == "accepted"
    # Nothing to fold in an MLP: torch-optimized runs eager's kernels, as the baseline's
    optimized = records["torch-optimized"]
    assert "as torch-eager's: the same outputs, bit for bit" in optimized.reason
    assert optimized.verification == records["torch-eager"].verification
    assert "torch-frozen" in records and "bit for bit" not in records["torch-frozen"].reason

    # A twin whose outputs it does not reproduce: verified in full, on its own.
    signature = InputSignature.from_shape((12,))
    ctx = _context(model, signature, tmp_path)
    ort = BACKENDS.get("onnxruntime")()
    by_name = {c.name: c for c in ort.candidates(ctx)}
    runner = ort.build(by_name["onnxruntime"], ctx).runner
    reference = _evaluate(runner, (x,), 256, 1).outputs
    task = Task.infer(y, reference.shape, None)
    check = Check(y, task, AccuracyBudget("absolute", 0.05), True)
    verified = _build_and_verify(
        by_name["onnxruntime"], ctx, (x,), reference, check, _fast_config()
    )
    assert isinstance(verified, _Built)
    wrong = _Built(
        verified.candidate, verified.built, verified.result, None, verified.outputs + 1.0
    )
    alone = _build_and_verify(
        by_name["onnxruntime-spin"], ctx, (x,), reference, check, _fast_config(), wrong
    )
    assert isinstance(alone, _Built) and "bit for bit" not in alone.result.reason
    assert alone.outputs is not None and len(alone.outputs) == len(x)  # every input ran


def _fast_config() -> OptimizeConfig:
    return OptimizeConfig(target="latency", batch_size=1, threads=2, isolate=False)
