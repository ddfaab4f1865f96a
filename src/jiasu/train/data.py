"""What `fit` accepts as data, as one of three kinds of samples, and the validation split.

- `Examples` (jiasu.data.examples): tensors in memory, batched by jiasu (on the device
  with the device_data technique). Arrays and tensors become Examples: ``(x, y)``,
  ``((x1, x2), y)``, ``({"input_ids": ids, "attention_mask": mask}, y)``; so do an
  `ImageDataset` (MNIST) and the train split of a `TrainingData`.
- a torch `Dataset` yielding ``(inputs, target)`` (a `StreamingExamples` among them):
  streamed by a DataLoader that jiasu makes, with the run's batch size and seed.
- a torch `DataLoader`: streamed as the user made it (its batch size, sampler, workers).

`inputs` in a streamed batch may be a tensor, a tuple/list of tensors in the model's
order, or a dict of tensors by name.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from jiasu.core.errors import ConfigError
from jiasu.data import ImageDataset
from jiasu.data.examples import Examples, StreamingExamples, TrainingData

Samples: TypeAlias = Examples | Dataset[Any] | DataLoader[Any]
Data: TypeAlias = (
    Examples | TrainingData | ImageDataset | Dataset[Any] | DataLoader[Any] | tuple[Any, Any]
)


class Arrays(Examples):
    """Images (N, C, H, W) and class ids (N,) as `Examples`: the pair the distributed
    engines build (kept until they train through the one trainer)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        examples = Examples.from_arrays(images, labels)
        super().__init__(examples.inputs, examples.targets, examples.signature)


def as_samples(data: Any, what: str) -> Samples:
    """`data` as Examples, a Dataset or a DataLoader (see the module docstring)."""
    if isinstance(data, Examples | DataLoader | Dataset):
        return data
    if isinstance(data, ImageDataset):
        return Examples.from_images(data)
    if isinstance(data, TrainingData):
        raise ConfigError(f"{what} must be one split, not a TrainingData; pass its .train")
    if isinstance(data, tuple) and len(data) == 2:
        return Examples.from_arrays(*data)
    raise ConfigError(
        f"{what} must be (inputs, targets) arrays or tensors, a dict of named inputs with "
        f"targets, Examples, TrainingData, a torch Dataset or DataLoader; got "
        f"{type(data).__name__}"
    )


def as_arrays(data: Any, what: str) -> Examples:
    """`data` as Examples in memory (a Dataset is decoded; a DataLoader is refused)."""
    samples = as_samples(data, what)
    if isinstance(samples, Examples):
        return samples
    if isinstance(samples, StreamingExamples):
        return samples.load()
    raise ConfigError(f"{what} must be held in memory here (arrays or Examples), not streamed")


def split_validation(
    data: Data, validation_split: float, validation_data: Data | None
) -> tuple[Samples, Samples | None, TrainingData | None]:
    """Training and validation samples, and the TrainingData they came from (if any).

    The split takes the *last* fraction, as Keras does; a `TrainingData`'s own val split
    is used when it has one.
    """
    if not isinstance(validation_split, int | float) or not 0.0 <= validation_split < 1.0:
        raise ConfigError(f"validation_split must be in [0, 1), got {validation_split!r}")
    given = data if isinstance(data, TrainingData) else None
    train = as_samples(given.train if given else data, "data")
    val = as_samples(validation_data, "validation_data") if validation_data is not None else None
    if given is not None and given.val is not None:
        if val is not None or validation_split:
            raise ConfigError(
                "the TrainingData has its own validation split; drop validation_data and "
                "validation_split"
            )
        val = as_samples(given.val, "validation data")
    if val is not None:
        if validation_split:
            raise ConfigError("give validation_split or validation_data, not both")
        return train, val, given
    if isinstance(train, DataLoader):
        if validation_split:
            raise ConfigError(
                "a DataLoader cannot be split for validation; pass validation_data (another "
                "DataLoader) instead of validation_split"
            )
        return train, None, given
    n = len(train)  # type: ignore[arg-type]  # a map-style Dataset has a length
    n_val = int(n * validation_split)
    if n_val == 0:
        return train, None, given
    cut = n - n_val  # before any shuffling
    if isinstance(train, Examples | StreamingExamples):
        return train.take(slice(0, cut)), train.take(slice(cut, n)), given
    return Subset(train, range(cut)), Subset(train, range(cut, n)), given


def samples_count(samples: Samples) -> int:
    """The number of samples (a DataLoader's dataset's, when it has a length)."""
    if isinstance(samples, DataLoader):
        try:
            return len(samples.dataset)  # type: ignore[arg-type]
        except TypeError:  # an IterableDataset without a length
            return len(samples) * (samples.batch_size or 1)
    return len(samples)  # type: ignore[arg-type]
