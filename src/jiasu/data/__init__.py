"""Datasets: the user's training data (image folders, .npz, tables) as `TrainingData`, and
MNIST from IDX files (local, cached or downloaded) with an offline fallback."""

from __future__ import annotations

from jiasu.data.dataset import DatasetSplits, ImageDataset
from jiasu.data.demo import load_for_demo
from jiasu.data.digits import load_digits_28
from jiasu.data.examples import Examples, StreamingExamples, TrainingData
from jiasu.data.idx import read_idx, write_idx
from jiasu.data.mnist import MnistUnavailableError, load_mnist
from jiasu.data.training import read_training_data

__all__ = [
    "DatasetSplits",
    "Examples",
    "ImageDataset",
    "MnistUnavailableError",
    "StreamingExamples",
    "TrainingData",
    "load_digits_28",
    "load_for_demo",
    "load_mnist",
    "read_idx",
    "read_training_data",
    "write_idx",
]
