from __future__ import annotations

import pytest

from jiasu.data import DatasetSplits, ImageDataset


@pytest.fixture(scope="session")
def small_train(mnist: DatasetSplits) -> ImageDataset:
    """5,000 real MNIST training images: enough to learn, quick to train on."""
    return mnist.train.take(5000)
