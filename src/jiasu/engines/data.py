"""Picklable data sources: each worker loads its data itself, nothing large is shipped.

A `DataSource` is a callable returning the run's `TrainingData` (train, validation and
test splits, the task). `UserDataSource` reads the user's file or folder with the same
options as `jiasu train --data` (on a cluster: the same path on every machine, or a
shared file system); `MnistSource` reads MNIST the same way; `InMemorySource` carries
the tensors along, which is simplest for small data.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

from jiasu.core.errors import ConfigError
from jiasu.core.task import Task
from jiasu.data import ImageDataset
from jiasu.data.examples import Examples, TrainingData


class DataSource(Protocol):
    def __call__(self) -> TrainingData: ...


@dataclasses.dataclass(frozen=True)
class UserDataSource:
    """The user's data at `path` as `jiasu.data.read_training_data` reads it (an image
    folder, .npz, .csv or .parquet), with the same options and seed, so every worker
    gets the same splits; a large image folder is streamed from disk by each worker."""

    path: str
    target_column: str | None = None
    task: str | None = None
    val_split: float = 0.2
    resize: tuple[int, int] | None = None
    seed: int = 0

    def __call__(self) -> TrainingData:
        from jiasu.data import read_training_data

        return read_training_data(
            self.path, target_column=self.target_column, task=self.task,
            val_split=self.val_split, resize=self.resize, seed=self.seed,
        )  # fmt: skip


@dataclasses.dataclass(frozen=True)
class MnistSource:
    """MNIST from `data_dir` (or jiasu's usual places): the first `train_samples` images
    to train on, the first `val_samples` test images to validate on (None: all; 0: no
    validation), and the whole test split to check a target accuracy against."""

    data_dir: str | None = None
    train_samples: int | None = None
    val_samples: int | None = None

    def __post_init__(self) -> None:
        for name in ("train_samples", "val_samples"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise ConfigError(f"{name} must be a whole number >= 0, got {value!r}")

    def __call__(self) -> TrainingData:
        from jiasu.data import load_mnist

        splits = load_mnist(self.data_dir, download=self.data_dir is None)
        train = splits.train
        if self.train_samples is not None:
            train = train.take(self.train_samples)
        test = splits.test
        val = None
        if self.val_samples != 0:
            val = test if self.val_samples is None else test.take(self.val_samples)
        data = TrainingData.from_splits(dataclasses.replace(splits, train=train))
        return dataclasses.replace(data, val=None if val is None else Examples.from_images(val))


@dataclasses.dataclass(frozen=True)
class InMemorySource:
    """Data held in memory and pickled to every worker (fine up to some tens of MB):
    images and labels (`ImageDataset`) or `Examples`; `task` None is inferred from the
    targets (a classification of `ImageDataset` labels, its classes from the model)."""

    train: ImageDataset | Examples
    validation: ImageDataset | Examples | None = None
    task: Task | None = None

    def __call__(self) -> TrainingData:
        train = _examples(self.train)
        val = None if self.validation is None else _examples(self.validation)
        task = self.task
        if task is None:
            regression = train.targets.dtype.is_floating_point
            task = Task("regression", "mse") if regression else Task("classification", "accuracy")
        return TrainingData(train, val, None, task, None, "data in memory")


def _examples(data: ImageDataset | Examples) -> Examples:
    return Examples.from_images(data) if isinstance(data, ImageDataset) else data
