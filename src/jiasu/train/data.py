"""What `fit` accepts as data, turned into two tensors, and the Keras-style validation split."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

import torch

from jiasu.core.errors import ConfigError
from jiasu.data import ImageDataset

Data: TypeAlias = ImageDataset | tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class Arrays:
    images: torch.Tensor  # (N, C, H, W) float32
    labels: torch.Tensor  # (N,) int64

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def as_arrays(data: Data, what: str) -> Arrays:
    """An ImageDataset, or (images, labels) as tensors/arrays; uint8 images are scaled to [0, 1]."""
    if isinstance(data, ImageDataset):
        return Arrays(data.images, data.labels)
    if isinstance(data, tuple) and len(data) == 2:
        images, labels = (torch.as_tensor(a) for a in data)
        if images.ndim == 3:  # (N, H, W) → (N, 1, H, W)
            images = images.unsqueeze(1)
        if images.ndim != 4 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
            raise ConfigError(
                f"{what} must be images (N, C, H, W) and labels (N,), got shapes "
                f"{tuple(images.shape)} and {tuple(labels.shape)}"
            )
        if images.dtype == torch.uint8:
            images = images.float() / 255.0
        return Arrays(images.float(), labels.long())
    raise ConfigError(
        f"{what} must be an ImageDataset or a tuple (images, labels), got {type(data).__name__}"
    )


def split_validation(
    data: Data, validation_split: float, validation_data: Data | None
) -> tuple[Arrays, Arrays | None]:
    """Training and validation arrays; the split takes the *last* fraction, as Keras does."""
    arrays = as_arrays(data, "data")
    if validation_data is not None:
        if validation_split:
            raise ConfigError("give validation_split or validation_data, not both")
        return arrays, as_arrays(validation_data, "validation_data")
    if not isinstance(validation_split, int | float) or not 0.0 <= validation_split < 1.0:
        raise ConfigError(f"validation_split must be in [0, 1), got {validation_split!r}")
    n_val = int(len(arrays) * validation_split)
    if n_val == 0:
        return arrays, None
    cut = len(arrays) - n_val  # before any shuffling
    return (
        Arrays(arrays.images[:cut], arrays.labels[:cut]),
        Arrays(arrays.images[cut:], arrays.labels[cut:]),
    )
