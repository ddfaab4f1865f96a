"""What a model takes: its ordered, named inputs, each with a dtype and a shape.

An `InputSignature` is defined once — from example inputs, from ``--input-spec``, from
``--input-shape``, from an ONNX file, or from the user's data — and then travels through
optimize, predict, the engines, every artifact and every report. A shape's first axis is
the batch; any axis may be symbolic (a name such as ``B`` or ``S``), the others are fixed
sizes. Inputs are passed to the model in order (positionally), or by name when the model
takes keyword arguments (a Hugging Face model called with ``input_ids=...``).

>>> sig = InputSignature.parse("input_ids:int64[B,128],attention_mask:int64[B,128]")
>>> sig.describe()
'input_ids:int64[B,128], attention_mask:int64[B,128]'
>>> InputSignature.from_shape((3, 32, 32)).describe()
'input:float32[B,3,32,32]'
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from jiasu.core.errors import ConfigError

Dim = int | str  # a fixed size, or the name of a symbolic axis
CallStyle = Literal["positional", "keyword"]
BATCH = "B"
# The dtypes a runtime can be fed; names are numpy's (and torch's, but for bool).
DTYPES = ("float32", "float16", "float64", "int64", "int32", "int16", "int8", "uint8", "bool")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_SPEC = re.compile(r"^\s*([^:\s]+)\s*:\s*([a-z0-9]+)\s*\[([^\]]*)\]\s*$")
# Sizes given to symbolic axes when inputs are made up (timing without data, export).
_EXAMPLE_SIZES = {"batch": 2, "other": 8}


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """One input: its name, dtype (numpy name) and shape, batch axis first.

    >>> InputSpec("x", "float32", ("B", 3, 32, 32)).sample_shape
    (3, 32, 32)
    """

    name: str
    dtype: str
    shape: tuple[Dim, ...]

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ConfigError(
                f"input name {self.name!r} is invalid; use letters, digits and _ (e.g. input_ids)"
            )
        if self.dtype not in DTYPES:
            raise ConfigError(
                f"input {self.name!r} has dtype {self.dtype!r}, which jiasu does not feed to "
                f"runtimes; use one of {', '.join(DTYPES)}"
            )
        if not self.shape:
            raise ConfigError(
                f"input {self.name!r} has no axes; give at least the batch axis, e.g. [B,30]"
            )
        for dim in self.shape:
            ok = (isinstance(dim, str) and _NAME.match(dim)) or (type(dim) is int and dim >= 1)
            if not ok:
                raise ConfigError(
                    f"input {self.name!r} has axis {dim!r}; an axis is a size >= 1 or a "
                    "name such as B or S"
                )

    @property
    def sample_shape(self) -> tuple[Dim, ...]:
        """The shape of one sample: every axis after the batch."""
        return self.shape[1:]

    @property
    def is_float(self) -> bool:
        return np.dtype(self.dtype).kind == "f"

    def describe(self) -> str:
        return f"{self.name}:{self.dtype}[{','.join(str(d) for d in self.shape)}]"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}


@dataclasses.dataclass(frozen=True)
class InputSignature:
    """The ordered inputs of a model, and whether it takes them by position or by name."""

    inputs: tuple[InputSpec, ...]
    call: CallStyle = "positional"

    def __post_init__(self) -> None:
        if not self.inputs:
            raise ConfigError("the model's signature names no inputs; give at least one")
        names = [spec.name for spec in self.inputs]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigError(f"input {duplicates[0]!r} is named twice; give each input once")
        if self.call not in ("positional", "keyword"):
            raise ConfigError(f"call style {self.call!r} is unknown; use positional or keyword")
        batch_axes = {spec.shape[0] for spec in self.inputs}
        if len(batch_axes) > 1:
            axes = ", ".join(map(str, sorted(batch_axes, key=str)))
            raise ConfigError(
                f"the inputs' first axes differ ({axes})"
                "; the first axis of every input is the batch, so give them one name, e.g. B"
            )

    # --- building one -------------------------------------------------------------------

    @classmethod
    def from_shape(cls, shape: Sequence[int], *, name: str = "input") -> InputSignature:
        """One float32 input of per-sample `shape` (``--input-shape 3,224,224``)."""
        return cls((InputSpec(name, "float32", (BATCH, *(int(d) for d in shape))),))

    @classmethod
    def parse(cls, text: str) -> InputSignature:
        """Parse ``"name:dtype[B,128],other:dtype[B,128]"`` (``--input-spec``)."""
        parts = _split_specs(text)
        if not parts:
            raise ConfigError(
                f"--input-spec {text!r} names no input; write it as name:dtype[B,...], e.g. "
                "input_ids:int64[B,128]"
            )
        specs = []
        for part in parts:
            match = _SPEC.match(part)
            if not match:
                raise ConfigError(
                    f"--input-spec part {part.strip()!r} does not parse; write each input as "
                    "name:dtype[B,...], e.g. input_ids:int64[B,128] or pixels:float32[B,3,224,224]"
                )
            name, dtype, dims = match.groups()
            shape = tuple(_dim(d.strip(), part) for d in dims.split(",")) if dims.strip() else ()
            specs.append(InputSpec(name, dtype, shape))
        return cls(tuple(specs), "keyword" if len(specs) > 1 else "positional")

    @classmethod
    def from_examples(cls, examples: Any) -> InputSignature:
        """The signature of example inputs: a tensor or array, a tuple/list of them
        (positional), or a mapping of names to them (keyword). The first axis is the
        batch and symbolic; the others are fixed at the example's sizes."""
        if isinstance(examples, Mapping):
            items = [(str(k), v) for k, v in examples.items()]
            style: CallStyle = "keyword"
        elif isinstance(examples, list | tuple):
            items = [
                (f"input_{i}" if len(examples) > 1 else "input", v) for i, v in enumerate(examples)
            ]
            style = "positional"
        else:
            items, style = [("input", examples)], "positional"
        specs = []
        for name, value in items:
            array = _as_numpy(value, name)
            if array.ndim == 0:
                raise ConfigError(
                    f"example input {name!r} is a single number; pass a batch (N, ...) with "
                    "the batch axis first"
                )
            specs.append(InputSpec(name, str(array.dtype), (BATCH, *array.shape[1:])))
        return cls(tuple(specs), style)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InputSignature:
        inputs = data.get("inputs")
        if not isinstance(inputs, list):
            raise ConfigError("a signature needs a list of inputs")
        specs = []
        for item in inputs:
            if not isinstance(item, Mapping) or not isinstance(item.get("shape"), list):
                raise ConfigError(f"signature input {item!r} needs a name, dtype and shape")
            specs.append(
                InputSpec(str(item.get("name")), str(item.get("dtype")), tuple(item["shape"]))
            )
        return cls(tuple(specs), data.get("call", "positional"))

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": [spec.to_dict() for spec in self.inputs], "call": self.call}

    # --- reading it ---------------------------------------------------------------------

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.inputs)

    @property
    def symbols(self) -> tuple[str, ...]:
        """The symbolic axes, batch first, each once."""
        seen: dict[str, None] = {}
        for spec in self.inputs:
            for dim in spec.shape:
                if isinstance(dim, str):
                    seen.setdefault(dim)
        return tuple(seen)

    @property
    def batch_symbol(self) -> str | None:
        first = self.inputs[0].shape[0]
        return first if isinstance(first, str) else None

    def describe(self) -> str:
        return ", ".join(spec.describe() for spec in self.inputs)

    def single_float_shape(self) -> tuple[int, ...] | None:
        """The per-sample shape of a model with one float input of fixed sample axes (an
        image or feature model), else None."""
        if len(self.inputs) != 1 or not self.inputs[0].is_float:
            return None
        sample = self.inputs[0].sample_shape
        if not all(isinstance(d, int) for d in sample):
            return None
        return tuple(int(d) for d in sample)

    # --- checking and making inputs -----------------------------------------------------

    def check(self, given: Any, *, what: str = "input") -> tuple[np.ndarray, ...]:
        """`given` as C-contiguous numpy arrays in signature order, in the signature's
        dtypes; anything that does not fit is one `ConfigError` saying what was expected
        and what was given. Accepts an array/tensor (one input), a sequence in order, or a
        mapping by name. Floats are converted between float widths, and integers to wider
        integers or to floats; a float passed for an integer input (token ids) is refused."""
        arrays = self._arrange(given, what)
        out = []
        sizes: dict[str, int] = {}
        for spec, value in zip(self.inputs, arrays, strict=True):
            array = _as_numpy(value, spec.name)
            if _one_channel(spec) and array.ndim == len(spec.shape) - 1 and len(self.inputs) == 1:
                array = array[:, None]  # (N, H, W) for a one-channel image model
            if array.ndim != len(spec.shape):
                raise ConfigError(
                    f"{what} {spec.name!r} has shape {tuple(array.shape)}, but the model takes "
                    f"{spec.describe()} ({len(spec.shape)} axes, the batch first); reshape it"
                )
            for axis, (dim, size) in enumerate(zip(spec.shape, array.shape, strict=True)):
                if isinstance(dim, int) and dim != size:
                    raise ConfigError(
                        f"{what} {spec.name!r} has shape {tuple(array.shape)}, but the model "
                        f"takes {spec.describe()} (axis {axis} must be {dim}); reshape it"
                    )
                if isinstance(dim, str) and sizes.setdefault(dim, size) != size:
                    raise ConfigError(
                        f"{what} {spec.name!r} has {size} along axis {dim}, but an earlier "
                        f"input has {sizes[dim]}; inputs of one call must agree "
                        f"({self.describe()})"
                    )
            out.append(np.ascontiguousarray(_cast(array, spec, what)))
        return tuple(out)

    def _arrange(self, given: Any, what: str) -> list[Any]:
        names = self.names
        if isinstance(given, Mapping):
            missing = [n for n in names if n not in given]
            extra = [str(k) for k in given if k not in names]
            if missing or extra:
                problems = []
                if missing:
                    problems.append(f"lacks {', '.join(missing)}")
                if extra:
                    problems.append(f"has {', '.join(extra)}, which the model does not take")
                raise ConfigError(
                    f"the {what} {' and '.join(problems)}; the model takes {self.describe()}"
                )
            return [given[n] for n in names]
        if isinstance(given, list | tuple):
            if len(given) != len(names):
                raise ConfigError(
                    f"{len(given)} {what}s were given, but the model takes {len(names)}: "
                    f"{self.describe()}"
                )
            return list(given)
        if len(names) != 1:
            raise ConfigError(
                f"one {what} array was given, but the model takes {len(names)}: "
                f"{self.describe()}; pass them as a tuple in this order or a dict by name"
            )
        return [given]

    def example_sizes(self, batch: int | None = None) -> dict[str, int]:
        """Sizes for the symbolic axes of made-up inputs: `batch` for the batch axis, and
        for the others distinct sizes from 8 up that no fixed axis has (a tracer takes
        axes of equal size for the same axis, so a time axis of 8 beside 8 features would
        be captured as tied to them)."""
        taken = {d for spec in self.inputs for d in spec.shape if isinstance(d, int)}
        sizes: dict[str, int] = {}
        size = _EXAMPLE_SIZES["other"]
        for symbol in self.symbols:
            while size in taken:
                size += 1
            sizes[symbol] = size
            taken.add(size)
        if self.batch_symbol is not None:
            if batch is None:  # for capture: 2 or more (1 is special-cased), like no other axis
                batch = _EXAMPLE_SIZES["batch"]
                while batch in taken:
                    batch += 1
            sizes[self.batch_symbol] = batch
        return sizes

    def generate(
        self, batch: int | None, *, seed: int = 0, sizes: Mapping[str, int] | None = None
    ) -> tuple[np.ndarray, ...]:
        """Made-up inputs of batch `batch`, for timing and export only (never for accuracy);
        `batch` None picks a size for capturing a graph (`example_sizes`).

        Floats are standard normal; integer inputs named like a mask are ones, like
        ``token_type_ids`` zeros, others uniform in [0, 100) (valid ids for any
        vocabulary of 100 or more); bools are True.
        """
        rng = np.random.default_rng(seed)
        sizes = {**self.example_sizes(batch), **(sizes or {})}
        out = []
        for spec in self.inputs:
            shape = tuple(sizes[d] if isinstance(d, str) else d for d in spec.shape)
            dtype = np.dtype(spec.dtype)
            if dtype.kind == "f":
                array = rng.standard_normal(shape).astype(dtype)
            elif dtype.kind == "b":
                array = np.ones(shape, dtype=bool)
            elif "mask" in spec.name:
                array = np.ones(shape, dtype=dtype)
            elif "type" in spec.name:
                array = np.zeros(shape, dtype=dtype)
            else:
                array = rng.integers(0, 100, size=shape).astype(dtype)
            out.append(array)
        return tuple(out)


def batch_size(arrays: Sequence[np.ndarray]) -> int:
    """The number of samples in a set of inputs (their common first axis)."""
    return int(arrays[0].shape[0])


def take(arrays: Sequence[np.ndarray], index: slice | np.ndarray) -> tuple[np.ndarray, ...]:
    """The same samples of every input, C-contiguous."""
    return tuple(np.ascontiguousarray(a[index]) for a in arrays)


def tile(arrays: Sequence[np.ndarray], batch: int) -> tuple[np.ndarray, ...]:
    """`batch` samples of every input: the first ones, repeated if there are fewer."""
    reps = -(-batch // batch_size(arrays))
    return tuple(np.ascontiguousarray(np.concatenate([a] * reps)[:batch]) for a in arrays)


def _one_channel(spec: InputSpec) -> bool:
    """An image input of one channel, (B, 1, H, W), which also takes (N, H, W)."""
    return len(spec.shape) == 4 and spec.shape[1] == 1 and spec.is_float


def _split_specs(text: str) -> list[str]:
    """Split at the commas between inputs, not those inside [...]."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p for p in parts if p.strip()]


def _dim(text: str, part: str) -> Dim:
    if text.isdigit():
        return int(text)
    if _NAME.match(text):
        return text
    raise ConfigError(
        f"--input-spec part {part.strip()!r} has axis {text!r}; an axis is a size or a name "
        "such as B, e.g. input_ids:int64[B,128]"
    )


def _as_numpy(value: Any, name: str) -> np.ndarray:
    try:
        import torch

        if isinstance(value, torch.Tensor):
            value = value.detach().cpu()
            if value.dtype == torch.bfloat16:
                value = value.float()
            return value.numpy()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    array = np.asarray(value)
    if array.dtype.kind not in "fiub":
        raise ConfigError(
            f"input {name!r} holds {array.dtype} values; pass numbers (a numpy array or tensor)"
        )
    return array


def _cast(array: np.ndarray, spec: InputSpec, what: str) -> np.ndarray:
    target = np.dtype(spec.dtype)
    if array.dtype == target:
        return array
    kind = array.dtype.kind
    if target.kind in "iu" and kind == "f":
        if not np.all(np.isfinite(array)) or not np.array_equal(array, np.round(array)):
            raise ConfigError(
                f"{what} {spec.name!r} holds {array.dtype} values with fractions, but the model "
                f"takes {spec.dtype} (e.g. token ids); pass whole numbers"
            )
    elif target.kind == "b" and kind not in "biu":
        raise ConfigError(f"{what} {spec.name!r} holds {array.dtype}; the model takes bool")
    return array.astype(target)
