"""Picklable data sources: each worker loads its data itself, nothing large is shipped.

A `DataSource` is a callable returning ``(train, validation or None)``. `MnistSource`
reads MNIST from a folder every worker can see (on a cluster: the same path on every
machine, or a shared file system); `InMemorySource` carries the tensors along, which
is simplest for small data.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

from jiasu.core.errors import ConfigError
from jiasu.data import ImageDataset


class DataSource(Protocol):
    def __call__(self) -> tuple[ImageDataset, ImageDataset | None]: ...


@dataclasses.dataclass(frozen=True)
class MnistSource:
    """MNIST from `data_dir` (or jiasu's usual places): the first `train_samples` images
    to train on and the first `val_samples` test images to validate on (None: all;
    0: no validation)."""

    data_dir: str | None = None
    train_samples: int | None = None
    val_samples: int | None = None

    def __post_init__(self) -> None:
        for name in ("train_samples", "val_samples"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise ConfigError(f"{name} must be a whole number >= 0, got {value!r}")

    def __call__(self) -> tuple[ImageDataset, ImageDataset | None]:
        from jiasu.data import load_mnist

        splits = load_mnist(self.data_dir, download=self.data_dir is None)
        train = splits.train
        if self.train_samples is not None:
            train = train.take(self.train_samples)
        if self.val_samples == 0:
            return train, None
        test = splits.test if self.val_samples is None else splits.test.take(self.val_samples)
        return train, test


@dataclasses.dataclass(frozen=True)
class InMemorySource:
    """Datasets held in memory and pickled to every worker (fine up to some tens of MB)."""

    train: ImageDataset
    validation: ImageDataset | None = None

    def __call__(self) -> tuple[ImageDataset, ImageDataset | None]:
        return self.train, self.validation
