"""ImageDataset validation, Keras-style validation split, take and to."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from jiasu.core.errors import ConfigError, DataError
from jiasu.data import ImageDataset


def _dataset(n: int) -> ImageDataset:
    images = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 1, 28, 28) / n
    return ImageDataset(images.contiguous(), torch.arange(n, dtype=torch.int64) % 10, "toy")


def test_split_validation_takes_the_last_fraction() -> None:
    data = _dataset(100)
    train, val = data.split_validation(0.1)
    assert (len(train), len(val)) == (90, 10)
    assert torch.equal(val.labels, data.labels[90:])
    assert torch.equal(train.images, data.images[:90])
    assert torch.equal(torch.cat([train.images, val.images]), data.images)


@pytest.mark.parametrize(("n", "fraction", "n_val"), [(10, 0.0, 0), (10, 0.25, 3), (7, 0.5, 4)])
def test_split_validation_sizes(n: int, fraction: float, n_val: int) -> None:
    train, val = _dataset(n).split_validation(fraction)
    assert (len(train), len(val)) == (n - n_val, n_val)


@pytest.mark.parametrize("fraction", [1.0, -0.1, 1.5, float("nan"), True, "0.1"])
def test_split_validation_rejects_bad_fraction(fraction: Any) -> None:
    with pytest.raises(ConfigError, match="validation fraction") as info:
        _dataset(10).split_validation(fraction)
    assert repr(fraction) in str(info.value)


def test_take_and_to() -> None:
    data = _dataset(20)
    first = data.take(5)
    assert len(first) == 5 and torch.equal(first.labels, data.labels[:5])
    assert data.take(50) is data
    with pytest.raises(ConfigError):
        data.take(-1)
    moved = data.to("cpu")
    assert moved is data
    meta = data.to("meta")
    assert meta.images.device.type == "meta" and len(meta) == 20


@pytest.mark.parametrize(
    ("images", "labels", "pattern"),
    [
        (
            torch.zeros(3, 1, 28, 28, dtype=torch.float64),
            torch.zeros(3, dtype=torch.int64),
            "float32",
        ),
        (torch.zeros(3, 28, 28), torch.zeros(3, dtype=torch.int64), "float32 of shape"),
        (torch.zeros(3, 1, 28, 28), torch.zeros(3, dtype=torch.int32), "int64"),
        (torch.zeros(3, 1, 28, 28), torch.zeros(4, dtype=torch.int64), "3 images but 4 labels"),
    ],
)
def test_dataset_validates(images: torch.Tensor, labels: torch.Tensor, pattern: str) -> None:
    with pytest.raises(DataError, match=pattern):
        ImageDataset(images, labels, "bad")
