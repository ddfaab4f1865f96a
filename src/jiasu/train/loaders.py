"""Batch iterators: torch's standard DataLoader (the plain way) and on-device batches."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch
from torch.utils.data import DataLoader, TensorDataset

Batch = tuple[torch.Tensor, torch.Tensor]  # (images (B, 1, 28, 28), labels (B,))


class DeviceBatches:
    """Shuffled mini-batches sliced from tensors that already live on the device.

    One ``randperm`` per epoch on the device, then one ``index_select`` per batch:
    no per-sample Python and no host→device copy in the loop.

    >>> x, y = torch.zeros(10, 1, 28, 28), torch.arange(10)
    >>> [len(b[1]) for b in DeviceBatches(x, y, 4, shuffle=False)]
    [4, 4, 2]
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        *,
        shuffle: bool = True,
        generator: torch.Generator | None = None,
        drop_last: bool = False,
    ) -> None:
        if images.shape[0] != labels.shape[0]:
            raise ValueError(f"{images.shape[0]} images but {labels.shape[0]} labels")
        self.images, self.labels = images, labels
        self.batch_size = batch_size
        self.shuffle, self.generator, self.drop_last = shuffle, generator, drop_last

    def __len__(self) -> int:
        n = self.images.shape[0]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        n = self.images.shape[0]
        device = self.images.device
        if self.generator is not None:
            # torch's DataLoader draws one int64 (its worker base seed) from the generator
            # before the sampler's randperm. Consuming the generator exactly as it does gives
            # the very same batches in every epoch (tested), so on the CPU swapping the
            # DataLoader for this class changes the speed and nothing else.
            torch.empty((), dtype=torch.int64, device=device).random_(generator=self.generator)
        if self.shuffle:
            order = torch.randperm(n, device=device, generator=self.generator)
        else:
            order = torch.arange(n, device=device)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            index = order[start : start + self.batch_size]
            yield self.images.index_select(0, index), self.labels.index_select(0, index)
        if self.shuffle and self.generator is not None:
            # torch's RandomSampler draws a second, unused permutation when it is exhausted.
            torch.randperm(n, device=device, generator=self.generator)


def dataloader_batches(
    images: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int,
    *,
    shuffle: bool = True,
    generator: torch.Generator | None = None,
    device: torch.device | None = None,
    pin_memory: bool = False,
) -> Iterable[Batch]:
    """torch's standard DataLoader over a TensorDataset, batches moved to `device`."""
    loader = DataLoader(
        TensorDataset(images, labels),
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator,
        pin_memory=pin_memory,
    )
    if device is None or device.type == "cpu":
        return loader
    return _MovedBatches(loader, device)


class _MovedBatches:
    """Re-iterable wrapper copying each batch to `device` (pinned, non-blocking on CUDA)."""

    def __init__(self, loader: Iterable[Batch], device: torch.device) -> None:
        self.loader, self.device = loader, device

    def __len__(self) -> int:
        return len(self.loader)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[Batch]:
        for x, y in self.loader:
            yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
