"""Batch iterators: torch's standard DataLoader (the plain way) and on-device batches.

Every iterator yields ``(inputs, targets)``: a tuple of input tensors in the model's
order (B, ...) each, and the targets (B,) or (B, k).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset, default_collate

from jiasu.core.errors import ConfigError, DataError, JiasuError

Inputs = tuple[torch.Tensor, ...]
Batch = tuple[Inputs, torch.Tensor]  # (inputs (B, ...) each, targets (B, ...))


class DeviceBatches:
    """Shuffled mini-batches sliced from tensors that already live on the device.

    One ``randperm`` per epoch on the device, then one ``index_select`` per input per
    batch: no per-sample Python and no host→device copy in the loop.

    >>> x, y = torch.zeros(10, 1, 28, 28), torch.arange(10)
    >>> [len(b[1]) for b in DeviceBatches(x, y, 4, shuffle=False)]
    [4, 4, 2]
    """

    def __init__(
        self,
        inputs: torch.Tensor | Sequence[torch.Tensor],
        targets: torch.Tensor,
        batch_size: int,
        *,
        shuffle: bool = True,
        generator: torch.Generator | None = None,
        drop_last: bool = False,
    ) -> None:
        self.inputs = (inputs,) if isinstance(inputs, torch.Tensor) else tuple(inputs)
        for x in self.inputs:
            if x.shape[0] != targets.shape[0]:
                raise ValueError(f"{x.shape[0]} samples of an input but {targets.shape[0]} targets")
        self.targets = targets
        self.batch_size = batch_size
        self.shuffle, self.generator, self.drop_last = shuffle, generator, drop_last

    def __len__(self) -> int:
        n = self.targets.shape[0]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        n = self.targets.shape[0]
        device = self.targets.device
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
            inputs = tuple(x.index_select(0, index) for x in self.inputs)
            yield inputs, self.targets.index_select(0, index)
        if self.shuffle and self.generator is not None:
            # torch's RandomSampler draws a second, unused permutation when it is exhausted.
            torch.randperm(n, device=device, generator=self.generator)


def dataloader_batches(
    inputs: torch.Tensor | Sequence[torch.Tensor],
    targets: torch.Tensor,
    batch_size: int,
    *,
    shuffle: bool = True,
    generator: torch.Generator | None = None,
    device: torch.device | None = None,
    pin_memory: bool = False,
) -> Iterable[Batch]:
    """torch's standard DataLoader over a TensorDataset, batches moved to `device`."""
    tensors = (inputs,) if isinstance(inputs, torch.Tensor) else tuple(inputs)
    loader = DataLoader(
        TensorDataset(*tensors, targets),
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator,
        pin_memory=pin_memory,
    )
    return StreamedBatches(loader, device, names=None, tensor_dataset=True)


def dataset_batches(
    dataset: Dataset[Any],
    batch_size: int,
    *,
    shuffle: bool = True,
    generator: torch.Generator | None = None,
    device: torch.device | None = None,
    pin_memory: bool = False,
    num_workers: int = 0,
    names: Sequence[str] | None = None,
) -> StreamedBatches:
    """A DataLoader over `dataset` (samples ``(inputs, target)``), batches moved to `device`.

    `num_workers` processes decode samples in parallel (the dataset must be picklable);
    they live until the returned batches are closed (`StreamedBatches.close`) or
    collected. A jiasu error raised while decoding a sample (a damaged file) is raised
    here as its own one sentence, not as torch's report of a worker's traceback.
    """
    loader = DataLoader(
        _Guarded(dataset),
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator,
        pin_memory=pin_memory,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        collate_fn=_collate_guarded,
    )
    return StreamedBatches(loader, device, names=names, owned=True)


@dataclasses.dataclass(frozen=True)
class _Failed:
    """A jiasu error met while decoding, carried to the training process as a value (a
    worker's raised exception would reach it as torch's multi-line worker report)."""

    kind: type[JiasuError]
    message: str

    def error(self) -> JiasuError:
        try:
            return self.kind(self.message)
        except TypeError:  # an error class built from other arguments
            return DataError(self.message)


@dataclasses.dataclass(frozen=True)
class _Guarded(Dataset[Any]):
    """`dataset`'s samples, or the `_Failed` jiasu error that decoding one raised."""

    dataset: Dataset[Any]

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> Any:
        try:
            return self.dataset[i]
        except JiasuError as exc:
            return _Failed(type(exc), str(exc))


def _collate_guarded(samples: list[Any]) -> Any:
    """torch's default collation, or the first `_Failed` among `samples`."""
    failed = next((s for s in samples if isinstance(s, _Failed)), None)
    return failed if failed is not None else default_collate(samples)


class StreamedBatches:
    """Re-iterable wrapper over a DataLoader: each batch as ``(inputs tuple, targets)``,
    copied to `device` (non-blocking, from pinned memory on CUDA).

    A batch's inputs may come as a tensor, a tuple/list in order, or a dict by name
    (ordered as `names`, the signature's).
    """

    def __init__(
        self,
        loader: Iterable[Any],
        device: torch.device | None,
        *,
        names: Sequence[str] | None = None,
        tensor_dataset: bool = False,
        owned: bool = False,
    ) -> None:
        self.loader, self.device = loader, device
        self.names = tuple(names) if names is not None else None
        self.tensor_dataset = tensor_dataset  # batches are [x1, ..., xk, y]
        self.moves = device is not None and device.type != "cpu"
        self.owned = owned  # jiasu made the loader (a user's DataLoader is left alone)

    def __len__(self) -> int:
        return len(self.loader)  # type: ignore[arg-type]

    def close(self) -> None:
        """End the worker processes of a loader jiasu made, now (a run ends with this;
        iterating again starts new ones)."""
        # torch keeps the iterator of persistent workers on the loader, and ends its
        # workers only when that iterator is collected, which a reference cycle delays.
        iterator = getattr(self.loader, "_iterator", None) if self.owned else None
        if iterator is not None:
            iterator._shutdown_workers()
            self.loader._iterator = None  # type: ignore[attr-defined]

    def __iter__(self) -> Iterator[Batch]:
        for batch in self.loader:
            if isinstance(batch, _Failed):
                raise batch.error()
            if self.tensor_dataset:
                inputs, targets = tuple(batch[:-1]), batch[-1]
            else:
                inputs, targets = split_batch(batch, self.names)
            if self.moves:
                inputs = tuple(x.to(self.device, non_blocking=True) for x in inputs)
                targets = targets.to(self.device, non_blocking=True)
            yield inputs, targets


def split_batch(batch: Any, names: Sequence[str] | None = None) -> Batch:
    """A collated ``(inputs, targets)`` batch as a tuple of input tensors and the targets."""
    if not isinstance(batch, list | tuple) or len(batch) != 2:
        raise ConfigError(
            f"a batch of the data is a {type(batch).__name__}"
            f"{f' of {len(batch)} items' if isinstance(batch, list | tuple) else ''}; each "
            "sample must be (inputs, target), with inputs a tensor, a tuple or a dict of tensors"
        )
    inputs, targets = batch
    if isinstance(inputs, torch.Tensor):
        parts: Inputs = (inputs,)
    elif isinstance(inputs, Mapping):
        order = names if names is not None else list(inputs)
        parts = tuple(inputs[name] for name in order)
    elif isinstance(inputs, list | tuple):
        parts = tuple(inputs)
    else:
        raise ConfigError(
            f"the inputs of a sample are a {type(inputs).__name__}; give a tensor, a tuple "
            "or a dict of tensors"
        )
    if not isinstance(targets, torch.Tensor) or not all(isinstance(x, torch.Tensor) for x in parts):
        raise ConfigError(
            "a sample's inputs and target must be tensors (or numbers torch collates)"
        )
    return parts, targets
