"""OpenVINO compiles the run's batch as a static shape and keeps every other batch working.

At batch 1 (latency) each OpenVINO candidate records ``static_batch``: calls of that batch
run on a model compiled for the static shape (faster: BERT-base int8 1.08x), others on the
dynamic-batch model. Both must give the model's answers, built and after a save and load,
for a model that is not an image classifier: token ids (int64) beside float features.
"""

from __future__ import annotations

from pathlib import Path

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
