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


# Tests that run a Ray driver or a Spark session inside the pytest process. Ray's core
# worker and the Spark gateway leave native threads behind after their shutdown, and the
# suite crashed beside them (a segmentation fault of the pytest process in a later ONNX
# Runtime test, in CI only; Ray documents in-process restarts as unsafe with threads
# running, ray-project/ray#31145). They carry the `cluster` marker, and `make test` runs
# them in a pytest process of their own after the rest (`-m "not cluster"`, `-m cluster`).
IN_PROCESS_CLUSTERS = (
    "tests/engines/test_ray.py",
    "tests/engines/test_spark.py",
    "tests/engines/test_spark_cluster.py",
    "tests/serve/test_ray_serve.py",
    "tests/cli/test_optimize_cli.py::test_predict_on_spark_equals_a_single_process",
    "tests/security/test_network.py::test_local_ray_instance_listens_on_loopback_only",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.nodeid.startswith(IN_PROCESS_CLUSTERS):
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    if not (MNIST_DIR / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"real MNIST not found at {MNIST_DIR} (see shared/data/README.md)")
    return MNIST_DIR


@pytest.fixture(scope="session")
def mnist(mnist_dir: Path) -> DatasetSplits:
    return load_mnist(mnist_dir, download=False)
