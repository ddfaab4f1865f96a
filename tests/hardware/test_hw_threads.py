"""Thread-count helpers."""

from __future__ import annotations

import os
from typing import Any

import pytest
import torch

from jiasu.core.errors import ConfigError
from jiasu.hardware.threads import default_threads, set_threads, threads


def test_set_threads_round_trip() -> None:
    original = torch.get_num_threads()
    try:
        previous = set_threads(1)
        assert previous == original
        assert torch.get_num_threads() == 1
        assert set_threads(original) == 1
        assert torch.get_num_threads() == original
    finally:
        torch.set_num_threads(original)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2", 100_000])
def test_set_threads_rejects_bad_values(bad: Any) -> None:
    original = torch.get_num_threads()
    with pytest.raises(ConfigError, match=repr(bad).replace(".", r"\.")):
        set_threads(bad)
    assert torch.get_num_threads() == original


def test_threads_context_restores_even_on_error() -> None:
    original = torch.get_num_threads()
    with pytest.raises(RuntimeError), threads(1) as n:
        assert n == 1
        assert torch.get_num_threads() == 1
        raise RuntimeError("boom")
    assert torch.get_num_threads() == original


def test_default_threads_is_the_affinity_mask() -> None:
    n = default_threads()
    assert n >= 1
    if hasattr(os, "sched_getaffinity"):
        assert n == len(os.sched_getaffinity(0))
    assert n <= (os.cpu_count() or n)


def test_submodule_not_shadowed() -> None:
    import importlib

    module = importlib.import_module("jiasu.hardware.threads")
    import jiasu.hardware

    assert jiasu.hardware.threads is module  # the package attribute is the submodule
