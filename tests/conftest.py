"""Shared fixtures: the real MNIST beside the repository, loaded once per session."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from jiasu.data import DatasetSplits, load_mnist

REPO = Path(__file__).resolve().parents[1]
MNIST_DIR = REPO.parent / "shared" / "data" / "mnist"

# jiasu remembers what it measured about the machine (`doctor --measure` peaks, `--recipe auto`
# decisions) in $JIASU_CACHE_DIR: the tests get a folder of their own, so they neither read the
# user's decisions nor leave theirs behind. Set here, before any test, so subprocesses inherit it.
_TEST_CACHE = tempfile.mkdtemp(prefix="jiasu-test-cache-")
os.environ["JIASU_CACHE_DIR"] = _TEST_CACHE


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_TEST_CACHE, ignore_errors=True)


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    if not (MNIST_DIR / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"real MNIST not found at {MNIST_DIR} (see shared/data/README.md)")
    return MNIST_DIR


@pytest.fixture(scope="session")
def mnist(mnist_dir: Path) -> DatasetSplits:
    return load_mnist(mnist_dir, download=False)
