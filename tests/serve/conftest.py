"""The models the serve tests serve, made at test time (servers: tests/serve/servers.py).

- `bert_artifact`: `jiasu.optimize` of a tiny random BertForSequenceClassification (two
  int64 inputs of symbolic batch and sequence axes), torch backend only: quick.
- `image_model`: a model directory of the registry CNN (float32 [B,1,28,28], 10 classes).
- `slow_model`: a model directory of a user factory that sleeps `SLOW_S` per call and
  returns 2x its input, float32 [B,4], loaded with --trust-code (for queues and timeouts).
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

SLOW_S = 0.4  # seconds per model call of the slow model
SLOW_FACTORY = textwrap.dedent(
    f'''
    import time

    import torch
    from torch import nn


    class Slow(nn.Module):
        """Takes {SLOW_S} s per call; returns 2x its input (one row per sample)."""

        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.tensor(2.0), requires_grad=False)

        def forward(self, x):
            time.sleep({SLOW_S})
            return x * self.scale


    def slow():
        return Slow().eval()
    '''
)


@pytest.fixture(scope="session")
def bert_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    import jiasu

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=3,
    )
    model = BertForSequenceClassification(config).eval()
    spec = "input_ids:int64[B,S],attention_mask:int64[B,S]"
    result = jiasu.optimize(
        model, input_spec=spec, backends=("torch",), isolate=False, measure_s=0.05
    )
    return result.save(tmp_path_factory.mktemp("bert") / "bert")


@pytest.fixture(scope="session")
def image_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from jiasu.models.registry import ModelSpec, create_model
    from jiasu.models.saved import save_model_dir

    torch.manual_seed(0)
    model = create_model("cnn", width=4).eval()
    return save_model_dir(
        tmp_path_factory.mktemp("cnn") / "digits", model, ModelSpec("cnn", {"width": 4})
    )


@pytest.fixture(scope="session")
def slow_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("slow")
    (root / "slow_zoo.py").write_text(SLOW_FACTORY)
    sys.path.insert(0, str(root))
    try:
        import slow_zoo  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(root))
    from jiasu.core.signature import InputSignature
    from jiasu.core.task import Task
    from jiasu.models.saved import FactoryRef, save_model_dir

    return save_model_dir(
        root / "slow",
        slow_zoo.slow(),
        FactoryRef("slow_zoo:slow"),
        signature=InputSignature.parse("x:float32[B,4]"),
        task=Task("regression", "mse"),
    )
