"""Data that does not fit in memory streams through DataLoader workers whose number is
chosen by measuring; streaming trains exactly as in memory; no worker outlives the run;
a damaged image met by a worker is one sentence (issue 13, item 5)."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from jiasu.core.errors import ConfigError, DataError
from jiasu.data.examples import Examples, StreamingExamples
from jiasu.data.training import read_training_data
from jiasu.hardware.threads import threads
from jiasu.train import History, fit
from jiasu.train import workers as workers_module
from jiasu.train.workers import choose_workers, decoding_rate, worker_counts

CLASSES = 3
PER_CLASS = 12
SIDE = 8


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models: one intra-op thread (a thread pool's waits dominate on a busy machine)."""
    with threads(1):
        yield


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """A folder of 36 RGB PNGs of 8x8 in 3 class folders, made now."""
    rng = np.random.default_rng(0)
    for c in range(CLASSES):
        folder = tmp_path / "photos" / f"class{c}"
        folder.mkdir(parents=True)
        for i in range(PER_CLASS):
            pixels = rng.integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}.png")
    return tmp_path / "photos"


def _cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * (SIDE - 2) ** 2, CLASSES)
    )


def _children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


def _rates(table: dict[int, float]) -> Any:
    """A timing function that answers `table[workers]` samples/s and records the calls."""

    def rate(dataset: Dataset[Any], batch: int, workers: int, indices: Sequence[int],
             seconds: float) -> float:  # fmt: skip
        rate.calls.append((workers, len(indices)))  # type: ignore[attr-defined]
        return table[workers]

    rate.calls = []  # type: ignore[attr-defined]
    return rate


def test_a_streamed_folder_trains_exactly_as_in_memory_with_workers_chosen_by_measuring(
    photos: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory = read_training_data(photos, stream=False, val_split=0.25, seed=0)
    stream = read_training_data(photos, stream=True, val_split=0.25, seed=0)
    assert isinstance(memory.train, Examples) and isinstance(stream.train, StreamingExamples)
    before = _children()
    reference = fit(_cnn(), memory, epochs=1, batch_size=8, quiet=True)
    assert reference.loader is None  # in memory: no loader workers
    # a measurement that finds 1 worker fastest (1 CPU) or 2 workers no faster than 1
    monkeypatch.setattr(workers_module, "decoding_rate", _rates({0: 2.0, 1: 6.0, 2: 4.0}))
    streamed = fit(_cnn(), stream, epochs=1, batch_size=8, quiet=True)
    assert streamed.loader is not None and streamed.loader["num_workers"] == 1
    assert streamed.loader["samples_per_s"]["0"] == 2.0
    assert streamed.loader["samples_per_s"]["1"] == 6.0
    assert History.from_dict(streamed.to_dict()).loader == streamed.loader
    # the same batches in the same order: the same losses, train and validation
    record = streamed.last
    assert record.samples == reference.last.samples == 27
    assert math.isclose(record.train_loss, reference.last.train_loss, rel_tol=1e-6)
    assert math.isclose(record.val_loss or 0, reference.last.val_loss or 1, rel_tol=1e-6)
    assert _children() == before  # the worker processes ended with the run


def test_the_choice_keeps_the_fastest_count_and_says_why() -> None:
    dataset = TensorDataset(torch.zeros(1000, 2), torch.zeros(1000))
    # 4 workers are faster than 2 but by less than 10%: 2 are kept; 8 end the climb
    rate = _rates({0: 100.0, 1: 300.0, 2: 600.0, 4: 640.0, 8: 500.0})
    choice = choose_workers(dataset, 10, epochs=5, cpus=8, rate=rate)
    assert choice.num_workers == 2
    assert list(choice.samples_per_s) == [0, 1, 2, 4, 8]
    assert choice.reason == "8 workers decoded no faster than 2"
    assert [w for w, _ in rate.calls] == [0, 1, 2, 4, 8]
    assert choice.to_dict()["samples_per_s"] == {"0": 100.0, "1": 300.0, "2": 600.0, "4": 640.0,
                                                 "8": 500.0}  # fmt: skip
    # 0 workers fastest, as on a busy 2-CPU machine: kept
    choice = choose_workers(dataset, 10, epochs=5, cpus=2, rate=_rates({0: 90.0, 1: 40.0}))
    assert (choice.num_workers, choice.reason) == (0, "1 worker decoded no faster than 0")
    # decoding the whole run here is quicker than measuring: workers are not measured
    choice = choose_workers(dataset, 10, epochs=5, cpus=8, rate=_rates({0: 1e6}))
    assert choice.num_workers == 0 and list(choice.samples_per_s) == [0]
    assert "less than measuring workers would take (3 s)" in choice.reason


def test_workers_that_cannot_start_leave_the_fastest_measured() -> None:
    def rate(dataset: Dataset[Any], batch: int, workers: int, indices: Sequence[int],
             seconds: float) -> float:  # fmt: skip
        if workers > 1:
            raise RuntimeError("Can't pickle local object\nsecond line")
        return 500.0 + 100.0 * workers

    dataset = TensorDataset(torch.zeros(1000, 2), torch.zeros(1000))
    choice = choose_workers(dataset, 10, epochs=5, cpus=4, rate=rate)
    assert choice.num_workers == 1  # 600/s is at least 10% faster than 500/s
    assert choice.reason == "2 workers could not decode (RuntimeError: Can't pickle local object)"


def test_worker_counts_climb_to_the_usable_cpus() -> None:
    assert worker_counts(1) == [0, 1]
    assert worker_counts(2) == [0, 1, 2]
    assert worker_counts(6) == [0, 1, 2, 4, 6]
    assert worker_counts(16) == [0, 1, 2, 4, 8, 16]


def test_measuring_real_workers_stays_near_its_budget_and_leaves_no_process(
    photos: Path,
) -> None:
    stream = read_training_data(photos, stream=True, val_split=0.0)
    before = _children()
    assert decoding_rate(stream.train, 4, 1, list(range(36)), 1.0) > 0
    start = time.perf_counter()
    choice = choose_workers(stream.train, 4, epochs=10**6, budget_s=1.0, cpus=2)
    assert time.perf_counter() - start < 4.0  # 1 s, plus each count's first timed round
    assert 0 in choice.samples_per_s and choice.num_workers in choice.samples_per_s
    assert all(r > 0 and math.isfinite(r) for r in choice.samples_per_s.values())
    assert _children() == before


def test_a_damaged_image_met_by_a_worker_is_one_sentence_and_the_workers_end(
    photos: Path,
) -> None:
    whole = (photos / "class0" / "0.png").read_bytes()
    (photos / "class1" / "cut.png").write_bytes(whole[: len(whole) // 2])  # header intact
    stream = read_training_data(photos, stream=True, val_split=0.0)  # reads headers only
    before = _children()
    with pytest.raises(DataError, match=r"cut\.png is not a readable image") as exc:
        fit(_cnn(), stream, epochs=1, batch_size=8, quiet=True, num_workers=2)
    assert "\n" not in str(exc.value) and "worker" not in str(exc.value)
    assert _children() == before


@pytest.mark.parametrize("bad", [-1, True, 2.0, "2", 10**6])
def test_num_workers_out_of_range_is_one_sentence(bad: object) -> None:
    with pytest.raises(ConfigError, match=r"num_workers .* is out of range; use a whole number"):
        fit(_cnn(), (torch.zeros(4, 3, SIDE, SIDE), torch.zeros(4, dtype=torch.long)),
            num_workers=bad, quiet=True)  # type: ignore[arg-type]  # fmt: skip


def test_a_dataloader_keeps_its_own_workers() -> None:
    loader = DataLoader(TensorDataset(torch.zeros(8, 3, SIDE, SIDE), torch.zeros(8).long()),
                        batch_size=4)  # fmt: skip
    with pytest.raises(ConfigError, match="has its own num_workers; set it there"):
        fit(_cnn(), loader, num_workers=1, quiet=True)
    assert fit(_cnn(), loader, quiet=True).loader is None
