"""In-memory image classification datasets: `ImageDataset` and `DatasetSplits`."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from jiasu.core.errors import ConfigError, DataError


@dataclass(frozen=True, eq=False, repr=False)
class ImageDataset:
    """Images and their class labels, held as tensors.

    `images` is float32 of shape (N, C, H, W) with values in [0, 1]; the loaders in
    this package give (N, 1, 28, 28). `labels` is int64 of shape (N,). The value
    range is the loaders' promise and is not re-checked here (it would cost a pass
    over the data on every slice).
    """

    images: torch.Tensor
    labels: torch.Tensor
    name: str

    def __post_init__(self) -> None:
        images, labels = self.images, self.labels
        if not isinstance(images, torch.Tensor) or not isinstance(labels, torch.Tensor):
            raise DataError(
                f"dataset '{self.name}' needs torch tensors for images and labels, got "
                f"{type(images).__name__} and {type(labels).__name__}; convert with torch.as_tensor"
            )
        if images.dtype != torch.float32 or images.dim() != 4:
            raise DataError(
                f"dataset '{self.name}' has images of dtype {images.dtype} and shape "
                f"{tuple(images.shape)}; they must be float32 of shape (N, C, H, W)"
            )
        if labels.dtype != torch.int64 or labels.dim() != 1:
            raise DataError(
                f"dataset '{self.name}' has labels of dtype {labels.dtype} and shape "
                f"{tuple(labels.shape)}; they must be int64 of shape (N,)"
            )
        if images.shape[0] != labels.shape[0]:
            raise DataError(
                f"dataset '{self.name}' has {images.shape[0]} images but {labels.shape[0]} "
                f"labels; give exactly one label per image"
            )

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __repr__(self) -> str:
        return (
            f"ImageDataset(name={self.name!r}, n={len(self)}, "
            f"image_shape={tuple(self.images.shape[1:])}, device={self.images.device})"
        )

    def _slice(self, start: int, stop: int, name: str) -> ImageDataset:
        return ImageDataset(self.images[start:stop], self.labels[start:stop], name)

    def split_validation(self, fraction: float) -> tuple[ImageDataset, ImageDataset]:
        """Split off the LAST `fraction` of the samples as validation, without shuffling.

        This is Keras' `validation_split`: the first ``floor(N * (1 - fraction))``
        samples train and the rest validate. `fraction` must be in [0, 1).
        """
        if (
            isinstance(fraction, bool)
            or not isinstance(fraction, (int, float))
            or not math.isfinite(fraction)
            or not 0 <= fraction < 1
        ):
            raise ConfigError(
                f"validation fraction {fraction!r} is invalid; use a number in [0, 1), "
                f"such as 0.1 for the last 10% of the training samples"
            )
        split_at = math.floor(len(self) * (1.0 - fraction))
        return (
            self._slice(0, split_at, f"{self.name} (train part)"),
            self._slice(split_at, len(self), f"{self.name} (validation part)"),
        )

    def take(self, n: int) -> ImageDataset:
        """Return the first `n` samples (all of them when there are fewer)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ConfigError(f"sample count {n!r} is invalid; use a whole number of 0 or more")
        if n >= len(self):
            return self
        return self._slice(0, n, f"{self.name} (first {n})")

    def to(self, device: str | torch.device) -> ImageDataset:
        """Return a copy whose tensors live on `device` (self when already there)."""
        device = torch.device(device)
        if self.images.device == device and self.labels.device == device:
            return self
        return ImageDataset(self.images.to(device), self.labels.to(device), self.name)


@dataclass(frozen=True)
class DatasetSplits:
    """A train and a test set, where they came from, and whether they are a fallback.

    `source` is human readable, e.g. "MNIST (IDX files in /path)". When `is_fallback`
    is true, `notice` says why the preferred data was not available, for the caller
    to print.
    """

    train: ImageDataset
    test: ImageDataset
    source: str
    is_fallback: bool = False
    notice: str = ""
