"""examples/founding_keras.py: the document's Keras model, three ways, on real MNIST."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from jiasu.data import DatasetSplits

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "founding_keras.py"
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")


def _example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("founding_keras", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_founding_keras_example_reaches_97_percent(mnist: DatasetSplits) -> None:
    example = _example()
    # The document's settings; one thread: on a 2-core machine shared with other jobs, two
    # threads wait on each other at every barrier and a run can take ten times as long.
    rows = example.run(mnist, example.Settings(threads=1), verbose=False)
    assert [r.name for r in rows] == ["keras", "keras+jiasu", "jiasu.fit"]
    for row in rows:
        assert row.test_accuracy >= 0.97, row
        assert row.train_s > 0
