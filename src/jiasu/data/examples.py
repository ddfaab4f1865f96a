"""Training samples, whatever the data: `Examples` in memory, `StreamingExamples` from files,
and `TrainingData` (the splits, the task and the class names) that training consumes.

An `Examples` holds each input as a tensor (N, ...) in signature order — float32 images
(N, C, H, W), int64 token ids (N, S), float32 features (N, F) — and one target per sample:
int64 class ids (N,) for classification, float32 (N,) or (N, k) for regression. Its
`signature` (jiasu.core.signature) names the inputs, with the batch axis symbolic (B).

>>> ex = Examples.from_arrays(np.zeros((4, 3), np.float32), np.array([0, 1, 0, 1]))
>>> ex.signature.describe(), ex.targets.dtype, len(ex)
('input:float32[B,3]', torch.int64, 4)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from jiasu.core.errors import ConfigError, DataError
from jiasu.core.signature import BATCH, InputSignature, InputSpec
from jiasu.core.task import Task

if TYPE_CHECKING:
    from jiasu.data.dataset import DatasetSplits, ImageDataset

Index = slice | torch.Tensor | Sequence[int]
# torch dtypes by numpy name, for the signature of tensors
_TORCH_DTYPE_NAMES = {
    torch.float32: "float32",
    torch.float16: "float16",
    torch.float64: "float64",
    torch.int64: "int64",
    torch.int32: "int32",
    torch.int16: "int16",
    torch.int8: "int8",
    torch.uint8: "uint8",
    torch.bool: "bool",
}


@dataclasses.dataclass(frozen=True, eq=False)
class Examples:
    """Samples in memory: each input (N, ...) in signature order, one target per sample."""

    inputs: tuple[torch.Tensor, ...]  # float32 images (N, C, H, W), int64 ids (N, S), ...
    targets: torch.Tensor  # (N,) int64 class ids, or (N,) / (N, k) float32
    signature: InputSignature  # names/dtypes/shapes of `inputs`, batch axis symbolic

    def __post_init__(self) -> None:
        inputs = tuple(self.inputs)
        object.__setattr__(self, "inputs", inputs)
        if not inputs or not all(isinstance(t, torch.Tensor) for t in (*inputs, self.targets)):
            raise DataError("examples need at least one input tensor and a target tensor")
        if len(inputs) != len(self.signature.inputs):
            raise DataError(
                f"examples hold {len(inputs)} inputs but their signature names "
                f"{len(self.signature.inputs)} ({self.signature.describe()}); give one per input"
            )
        _check_rows(
            [(spec.name, int(t.shape[0]) if t.dim() else 0) for spec, t in zip(
                self.signature.inputs, inputs, strict=True)],
            int(self.targets.shape[0]) if self.targets.dim() else 0,
        )  # fmt: skip

    def __len__(self) -> int:
        return int(self.targets.shape[0])

    def __repr__(self) -> str:
        return (
            f"Examples(n={len(self)}, inputs={self.signature.describe()}, "
            f"targets={str(self.targets.dtype).removeprefix('torch.')}"
            f"{list(self.targets.shape[1:])}, device={self.device})"
        )

    @property
    def device(self) -> torch.device:
        return self.targets.device

    @property
    def nbytes(self) -> int:
        """Bytes the inputs and targets take (to decide whether they fit on a device)."""
        return sum(t.element_size() * t.numel() for t in (*self.inputs, self.targets))

    def take(self, index: Index) -> Examples:
        """The samples at `index` (a slice, or indices as a tensor or sequence), same signature."""
        if not isinstance(index, slice):
            index = torch.as_tensor(index, dtype=torch.long, device=self.device)
        return Examples(tuple(t[index] for t in self.inputs), self.targets[index], self.signature)

    def to(self, device: str | torch.device) -> Examples:
        """A copy whose tensors live on `device` (self when already there)."""
        device = torch.device(device)
        if all(t.device == device for t in (*self.inputs, self.targets)):
            return self
        return Examples(
            tuple(t.to(device) for t in self.inputs), self.targets.to(device), self.signature
        )

    @classmethod
    def from_arrays(cls, inputs: Any, targets: Any, names: Sequence[str] | None = None) -> Examples:
        """Examples from numpy arrays or tensors: `inputs` one array, a tuple/list in the
        model's order (named `names`, else input / input_0, input_1, ...), or a dict by name
        (passed to the model by keyword); `targets` one per sample.

        Unsigned bytes are pixels, scaled to float32 in [0, 1]; float64 becomes float32 (the
        dtype models train in). Integer or boolean targets (N,) are class ids (int64);
        float targets (N,) or (N, k) are regression targets (float32).
        """
        named, style = _named_inputs(inputs, names)
        tensors = tuple(_input_tensor(value, name) for name, value in named)
        specs = tuple(
            InputSpec(name, _TORCH_DTYPE_NAMES[t.dtype], (BATCH, *t.shape[1:]))
            for (name, _), t in zip(named, tensors, strict=True)
        )
        signature = InputSignature(specs, style)
        return cls(tensors, as_targets(targets), signature)

    @classmethod
    def from_images(cls, dataset: ImageDataset) -> Examples:
        """An `ImageDataset` (MNIST): images float32 (N, C, H, W) as input "input", labels
        as int64 class ids."""
        return cls.from_arrays(dataset.images, dataset.labels)


class StreamingExamples(torch.utils.data.Dataset[tuple[tuple[torch.Tensor, ...], torch.Tensor]]):
    """Samples decoded one at a time from files, for data that does not fit in memory.

    `decode(source)` turns one file (or any picklable source) into the sample's inputs,
    each without the batch axis; `targets` (N,) or (N, k) stay in memory. Picklable when
    `decode` is (a module-level function or a dataclass instance), so a DataLoader's
    workers can decode in parallel: ``sample = dataset[i]`` is ``(inputs, target)``.
    """

    def __init__(
        self,
        sources: Sequence[Any],
        targets: torch.Tensor,
        signature: InputSignature,
        decode: Callable[[Any], tuple[torch.Tensor, ...]],
    ) -> None:
        self.sources = tuple(sources)
        self.targets = as_targets(targets)
        self.signature = signature
        self.decode = decode
        if len(self.sources) != len(self.targets):
            raise DataError(
                f"{len(self.sources)} files were given with {len(self.targets)} targets; give "
                "one target per file"
            )

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, i: int) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        return self.decode(self.sources[i]), self.targets[i]

    def __repr__(self) -> str:
        return f"StreamingExamples(n={len(self)}, inputs={self.signature.describe()})"

    def take(self, index: Index) -> StreamingExamples:
        """The samples at `index` (a slice, or indices), still decoded on demand."""
        positions = (
            range(len(self))[index]
            if isinstance(index, slice)
            else torch.as_tensor(index, dtype=torch.long).tolist()
        )
        picked = torch.as_tensor(list(positions), dtype=torch.long)
        return StreamingExamples(
            [self.sources[i] for i in positions], self.targets[picked], self.signature, self.decode
        )

    def load(self) -> Examples:
        """Every sample decoded into memory (for small data, and to check a stream)."""
        if not len(self):
            raise DataError("there are no samples to load; pass at least one")
        samples = [self.decode(s) for s in self.sources]
        inputs = tuple(torch.stack(parts) for parts in zip(*samples, strict=True))
        return Examples(inputs, self.targets, self.signature)


Samples = Examples | StreamingExamples


@dataclasses.dataclass(frozen=True)
class TrainingData:
    """What `jiasu train --data` and `jiasu.fit` train on: the splits, the task, the classes.

    `classes` names the classes in class-id order (folder names, label values) or is None;
    `source` describes the data for reports, e.g. "photos/ (image folder, 3 classes)".
    """

    train: Samples
    val: Samples | None
    test: Samples | None
    task: Task
    classes: tuple[str, ...] | None
    source: str

    def __post_init__(self) -> None:
        if self.task.kind not in ("classification", "regression"):
            raise ConfigError(
                f"training needs a classification or regression task, not {self.task.kind}"
            )
        if not len(self.train):
            raise DataError(f"{self.source} has no training samples; pass at least one")
        for name, split in (("validation", self.val), ("test", self.test)):
            if split is not None and split.signature != self.train.signature:
                raise DataError(
                    f"the {name} inputs ({split.signature.describe()}) differ from the "
                    f"training inputs ({self.train.signature.describe()}); give them one layout"
                )
        if (
            self.classes is not None
            and self.task.classes is not None
            and len(self.classes) != self.task.classes
        ):
            raise DataError(
                f"{len(self.classes)} class names were given for {self.task.classes} classes; "
                "name each class once"
            )

    @property
    def signature(self) -> InputSignature:
        return self.train.signature

    @classmethod
    def from_splits(cls, splits: DatasetSplits) -> TrainingData:
        """MNIST's (or any `DatasetSplits`') train and test sets as training data: a
        10-class classification (``jiasu.data.mnist.MNIST_TASK``), no validation split."""
        from jiasu.data.mnist import MNIST_TASK

        classes = MNIST_TASK.classes or 10
        return cls(
            train=Examples.from_images(splits.train),
            val=None,
            test=Examples.from_images(splits.test),
            task=MNIST_TASK,
            classes=tuple(str(c) for c in range(classes)),
            source=splits.source,
        )


def as_targets(targets: Any) -> torch.Tensor:
    """Targets as training takes them: int64 class ids (N,) from integers or booleans,
    float32 (N,) or (N, k) from floats; anything else is a `DataError`."""
    tensor = _tensor(targets, "targets")
    if tensor.dim() == 0:
        raise DataError("the targets are a single number; pass one target per sample (N,)")
    if tensor.dtype.is_floating_point:
        tensor = tensor.float()
        if not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor.reshape(len(tensor), -1)).all(1)).sum())
            raise DataError(
                f"{bad} of {len(tensor)} targets are NaN or infinite; drop or fix those samples"
            )
        return tensor
    if tensor.dim() != 1:
        raise DataError(
            f"integer targets have shape {tuple(tensor.shape)}; class ids are one per sample "
            "(N,), pass float targets for a regression with several outputs"
        )
    return tensor.long()


def _named_inputs(inputs: Any, names: Sequence[str] | None) -> tuple[list[tuple[str, Any]], Any]:
    """(name, array) pairs in order and the call style (keyword for a dict)."""
    if isinstance(inputs, Mapping):
        if names is not None:
            raise ConfigError("inputs given by name (a dict) take no separate names; drop names")
        return [(str(k), v) for k, v in inputs.items()], "keyword"
    values = list(inputs) if isinstance(inputs, list | tuple) else [inputs]
    if names is None:
        names = [f"input_{i}" for i in range(len(values))] if len(values) > 1 else ["input"]
    names = list(names)
    if len(names) != len(values):
        raise ConfigError(
            f"{len(names)} names were given for {len(values)} inputs; name each input once"
        )
    return list(zip(names, values, strict=True)), "positional"


def _tensor(value: Any, name: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach()
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise DataError(f"{name} hold {array.dtype} values; pass numbers (a numpy array or tensor)")
    return torch.from_numpy(np.ascontiguousarray(array))


def _input_tensor(value: Any, name: str) -> torch.Tensor:
    tensor = _tensor(value, f"input {name!r}")
    if tensor.dim() == 0:
        raise DataError(f"input {name!r} is a single number; pass a batch (N, ...)")
    if tensor.dtype == torch.uint8:
        return tensor.float() / 255.0  # pixels
    if tensor.dtype in (torch.float64, torch.bfloat16):
        return tensor.float()
    if tensor.dtype not in _TORCH_DTYPE_NAMES:
        raise DataError(f"input {name!r} has dtype {tensor.dtype}; pass numbers")
    return tensor


def _check_rows(inputs: Sequence[tuple[str, int]], targets: int) -> None:
    """Every input and the targets have one row per sample."""
    rows = {name: n for name, n in inputs}
    if len(set(rows.values()) | {targets}) > 1:
        counts = ", ".join(f"{name} {n}" for name, n in rows.items())
        raise DataError(
            f"the inputs and targets have different numbers of samples ({counts}, targets "
            f"{targets}); give every input and the targets the same first axis"
        )
