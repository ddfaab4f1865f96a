from __future__ import annotations

import pytest
import torch

from jiasu.core.errors import ConfigError
from jiasu.models import MODELS, ModelSpec, create_model


@pytest.mark.parametrize("name", MODELS.names())
def test_every_model_maps_mnist_images_to_ten_logits_and_trains(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name)
    x = torch.rand(4, 1, 28, 28)
    y = torch.tensor([0, 1, 2, 3])
    logits = model(x)
    assert logits.shape == (4, 10)
    torch.nn.functional.cross_entropy(logits, y).backward()
    assert all(p.grad is not None for p in model.parameters())
    assert 50_000 < sum(p.numel() for p in model.parameters()) < 300_000


def test_founding_mlp_is_the_corrected_document_model() -> None:
    model = create_model("mlp", hidden=64)
    kinds = [type(m).__name__ for m in model]
    assert kinds == ["Flatten", "Linear", "ReLU", "Dropout", "Linear"]
    assert model[1].in_features == 784 and model[1].out_features == 64
    assert model[3].p == pytest.approx(0.2)


def test_unknown_model_and_bad_arguments_are_clear() -> None:
    with pytest.raises(
        ConfigError, match=r"unknown model 'resnet50'.*known: cnn, mlp, resnet, vgg"
    ):
        create_model("resnet50")
    with pytest.raises(ConfigError, match="has no argument 'depth'"):
        create_model("mlp", depth=3)
    with pytest.raises(ConfigError, match="hidden must be a positive integer"):
        ModelSpec("mlp", {"hidden": 0}).build()
