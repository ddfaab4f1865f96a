"""Shared fixtures: the real MNIST beside the repository, loaded once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from jiasu.data import DatasetSplits, load_mnist

REPO = Path(__file__).resolve().parents[1]
MNIST_DIR = REPO.parent / "shared" / "data" / "mnist"


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    if not (MNIST_DIR / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"real MNIST not found at {MNIST_DIR} (see shared/data/README.md)")
    return MNIST_DIR


@pytest.fixture(scope="session")
def mnist(mnist_dir: Path) -> DatasetSplits:
    return load_mnist(mnist_dir, download=False)
