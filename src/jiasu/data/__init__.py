"""Datasets: MNIST from IDX files (local, cached or downloaded) and an offline fallback."""

from __future__ import annotations

from jiasu.data.dataset import DatasetSplits, ImageDataset
from jiasu.data.demo import load_for_demo
from jiasu.data.digits import load_digits_28
from jiasu.data.idx import read_idx, write_idx
from jiasu.data.mnist import MnistUnavailableError, load_mnist

__all__ = [
    "DatasetSplits",
    "ImageDataset",
    "MnistUnavailableError",
    "load_digits_28",
    "load_for_demo",
    "load_mnist",
    "read_idx",
    "write_idx",
]
