"""Small models trained for real on MNIST, once per session, and held-out data as numpy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from jiasu.data import DatasetSplits
from jiasu.models import ModelSpec, create_model, save_model_dir
from jiasu.train import fit
from jiasu.train.recipes import fast


def _train(name: str, mnist: DatasetSplits, samples: int) -> nn.Module:
    torch.manual_seed(0)
    model = create_model(name)
    fit(model, mnist.train.take(samples), epochs=1, batch_size=64, recipe=fast(), quiet=True)
    return model.eval()


@pytest.fixture(scope="session")
def mlp(mnist: DatasetSplits) -> nn.Module:
    """The founding MLP after one epoch on 10k MNIST images (about 90% test accuracy)."""
    return _train("mlp", mnist, 10_000)


@pytest.fixture(scope="session")
def cnn(mnist: DatasetSplits) -> nn.Module:
    """The small CNN (with batch norm) after one epoch on 3k MNIST images."""
    return _train("cnn", mnist, 3_000)


@pytest.fixture(scope="session")
def mlp_dir(mlp: nn.Module, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_model_dir(tmp_path_factory.mktemp("models") / "mlp", mlp, ModelSpec("mlp"))


@pytest.fixture(scope="session")
def val(mnist: DatasetSplits) -> tuple[np.ndarray, np.ndarray]:
    """1,000 MNIST test images (N, 1, 28, 28) float32 and their labels."""
    test = mnist.test.take(1_000)
    return test.images.numpy(), test.labels.numpy()


@pytest.fixture(scope="session")
def calib(mnist: DatasetSplits) -> np.ndarray:
    """200 MNIST training images for int8 calibration, none used to train the models above."""
    return mnist.train.images[-200:].numpy()
