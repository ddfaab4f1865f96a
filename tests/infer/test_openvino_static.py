"""OpenVINO compiles the run's batch as a static shape and keeps every other batch working.

At batch 1 (latency) each OpenVINO candidate records ``static_batch``: calls of that batch
run on a model compiled for the static shape (faster: BERT-base int8 1.08x), others on the
dynamic-batch model. Both must give the model's answers, built and after a save and load,
for a model that is not an image classifier: token ids (int64) beside float features.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from jiasu.core.signature import InputSignature
from jiasu.infer.backends import BACKENDS, BuildContext, ModelSource

pytest.importorskip("openvino")

SIGNATURE = InputSignature.parse("ids:int64[B,16],features:float32[B,4]")


class TokensAndFeatures(nn.Module):
    """Embedded tokens, mean-pooled, beside a few float features: a regression head."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(50, 8)
        self.head = nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 3))

    def forward(self, ids: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([self.embed(ids).mean(1), features], dim=1))


def _inputs(batch: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, 50, size=(batch, 16)).astype(np.int64)
    return ids, rng.standard_normal((batch, 4)).astype(np.float32)


def _split_fp32(tmp_path: Path) -> tuple[TokensAndFeatures, BuildContext, Any, Any]:
    """The model, its build context at batch 32 for throughput, the fp32 OpenVINO candidate
    that splits the batch over the streams, and that candidate's built runner."""
    torch.manual_seed(0)
    model = TokensAndFeatures().eval()
    ctx = BuildContext(ModelSource("torch", SIGNATURE, "m", model), tmp_path, 2, 32, "throughput",
                       None)  # fmt: skip
    candidate = next(
        c for c in BACKENDS.get("openvino")().candidates(ctx)
        if c.settings["split_batch"] and c.settings["precision"] == "fp32"
    )  # fmt: skip
    return model, ctx, candidate, BACKENDS.get("openvino")().build(candidate, ctx).runner


def test_the_static_batch_and_other_batches_give_the_models_answers(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = TokensAndFeatures().eval()
    source = ModelSource("torch", SIGNATURE, "test model", model)
    ctx = BuildContext(source, tmp_path / "work", 2, 1, "latency", None)
    backend = BACKENDS.get("openvino")()
    candidate = next(c for c in backend.candidates(ctx) if c.name in ("openvino-fp32", "openvino")
                     and c.settings["precision"] == "fp32")  # fmt: skip
    assert candidate.settings["static_batch"] == 1
    built = backend.build(candidate, ctx)
    folder = tmp_path / "artifact"
    folder.mkdir()
    files = built.save(folder)
    loaded = backend.load(folder, files, candidate.settings, SIGNATURE)
    for batch in (1, 7, 1):  # the static model, the dynamic one compiled now, static again
        ids, features = _inputs(batch, seed=batch)
        with torch.no_grad():
            expected = model(torch.from_numpy(ids), torch.from_numpy(features)).numpy()
        for runner in (built.runner, loaded):
            got = runner(ids, features)
            assert got.shape == expected.shape
            np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_a_model_that_will_not_take_the_static_shape_runs_on_the_dynamic_one(
    tmp_path: Path,
) -> None:
    """A static shape OpenVINO cannot propagate through the graph (here: 5 features where
    the layer takes 4) must not break the candidate: every batch runs on the dynamic model."""
    from jiasu.infer.backends.openvino import runner_for

    torch.manual_seed(0)
    model = TokensAndFeatures().eval()
    ctx = BuildContext(ModelSource("torch", SIGNATURE, "m", model), tmp_path, 2, 1, "latency",
                       None)  # fmt: skip
    import openvino as ov

    ir = ov.Core().read_model(str(ctx.onnx_file()[0]))
    wrong = InputSignature.parse("ids:int64[B,16],features:float32[B,5]")
    settings = {"hint": "LATENCY", "threads": 2, "precision_hint": "f32", "static_batch": 1}
    runner = runner_for(ir, settings, wrong)
    ids, features = _inputs(1, seed=3)
    with torch.no_grad():
        expected = model(torch.from_numpy(ids), torch.from_numpy(features)).numpy()
    np.testing.assert_allclose(runner(ids, features), expected, rtol=1e-4, atol=1e-5)


def test_a_symbolic_sequence_axis_stays_dynamic_in_the_static_shape() -> None:
    from jiasu.infer.backends.openvino import static_shapes

    signature = InputSignature.parse("ids:int64[B,S],mask:int64[B,S],extra:float32[B,5]")
    assert static_shapes(signature, 1) == {0: [1, -1], 1: [1, -1], 2: [1, 5]}


def test_a_split_batch_has_no_static_shape(tmp_path: Path) -> None:
    """Throughput candidates cut the batch over the streams: each request gets a part of
    it, so no one static batch fits them."""
    source = ModelSource("torch", SIGNATURE, "test model", TokensAndFeatures().eval())
    ctx = BuildContext(source, tmp_path, 2, 32, "throughput", None)
    settings = {c.name: c.settings for c in BACKENDS.get("openvino")().candidates(ctx)}
    assert settings["openvino"]["split_batch"] and settings["openvino"]["static_batch"] is None
    assert settings["openvino-latency-hint"]["static_batch"] == 32


def test_a_batch_smaller_than_the_streams_runs_on_a_latency_compiled_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A throughput artifact splits each batch over OpenVINO's streams (one core each); a
    batch of 1 would run on one core. It runs on the model compiled under LATENCY (every
    thread on one request), compiled at the first such batch, with the same answers."""
    from jiasu.infer.backends import openvino

    hints: list[str] = []
    real = openvino.compile_model

    def recording(model: object, settings: dict) -> object:
        hints.append(settings["hint"])
        return real(model, settings)

    monkeypatch.setattr(openvino, "compile_model", recording)
    model, ctx, candidate, runner = _split_fp32(tmp_path)
    ir = openvino._ov().Core().read_model(str(ctx.onnx_file()[0]))
    streams = int(real(ir, candidate.settings).get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
    if streams < 2:
        pytest.skip("OpenVINO makes one stream here: nothing to split")
    hints.clear()
    for batch in (32, 1, 1, 7):
        ids, features = _inputs(batch, seed=batch)
        with torch.no_grad():
            expected = model(torch.from_numpy(ids), torch.from_numpy(features)).numpy()
        np.testing.assert_allclose(runner(ids, features), expected, rtol=1e-4, atol=1e-5)
    assert hints == ["LATENCY"]  # compiled once, at the first batch below the streams


def test_candidates_share_one_conversion_and_int8_leaves_it_as_it_was(tmp_path: Path) -> None:
    pytest.importorskip("nncf")
    torch.manual_seed(0)
    model = TokensAndFeatures().eval()
    source = ModelSource("torch", SIGNATURE, "test model", model)
    ctx = BuildContext(source, tmp_path / "work", 2, 4, "latency", _inputs(16, seed=3))
    backend = BACKENDS.get("openvino")()
    by_name = {c.name: c for c in backend.candidates(ctx)}
    exact = next(c for c in by_name.values() if c.settings["precision"] == "fp32")
    ids, features = _inputs(4, seed=9)
    with torch.no_grad():
        expected = model(torch.from_numpy(ids), torch.from_numpy(features)).numpy()
    backend.build(exact, ctx)
    backend.build(by_name["openvino-int8"], ctx)  # NNCF works on a copy of the shared model
    again = backend.build(exact, ctx)  # built on the shared model after NNCF ran
    np.testing.assert_allclose(again.runner(ids, features), expected, rtol=1e-4, atol=1e-5)

    def convert_again() -> None:
        raise AssertionError("the model was converted again")

    _, seconds = ctx.shared("openvino model", convert_again)
    assert seconds == 0.0


def test_the_first_call_of_a_new_shape_runs_its_parts_one_after_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under THROUGHPUT the batch is split over OpenVINO's streams. Two streams meeting a
    new shape at once gave wrong answers now and then (ViT-B/16 fp32), so the first call at
    each shape starts a part only when the one before has finished; later calls of that
    shape run their parts at once. Every call gives the model's answers."""
    import openvino as ov

    events: list[str] = []

    class Recording(ov.AsyncInferQueue):  # the real queue, its calls written down
        def start_async(self, *args: object, **kwargs: object) -> None:
            events.append("start")
            super().start_async(*args, **kwargs)

        def wait_all(self) -> None:
            events.append("wait")
            super().wait_all()

    monkeypatch.setattr(ov, "AsyncInferQueue", Recording)
    model, _, _, runner = _split_fp32(tmp_path)
    seen: list[list[str]] = []
    for batch in (32, 32, 7, 32, 7):
        events.clear()
        ids, features = _inputs(batch, seed=batch)
        with torch.no_grad():
            expected = model(torch.from_numpy(ids), torch.from_numpy(features)).numpy()
        np.testing.assert_allclose(runner(ids, features), expected, rtol=1e-4, atol=1e-5)
        seen.append(list(events))
    if not seen[0]:
        pytest.skip("OpenVINO makes one stream here: nothing to split")
    parts = seen[0].count("start")
    assert parts >= 2
    one_by_one = ["start", "wait"] * parts + ["wait"]
    at_once = ["start"] * parts + ["wait"]
    assert seen == [one_by_one, at_once, one_by_one, at_once, at_once]
