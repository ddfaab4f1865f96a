"""What an ONNX file takes: its inputs as an `InputSignature`, read without running it."""

from __future__ import annotations

from pathlib import Path

from jiasu.core.errors import CheckpointError, first_line
from jiasu.core.extras import require
from jiasu.core.signature import InputSignature, InputSpec

_ONNX_DTYPES = {
    1: "float32", 10: "float16", 11: "float64", 7: "int64", 6: "int32", 5: "int16",
    3: "int8", 2: "uint8", 9: "bool",
}  # fmt: skip


def read_onnx_signature(path: Path) -> InputSignature:
    """Check that `path` is a valid ONNX model and return its inputs' signature.

    The first axis of each input is the batch; named or unknown axes are symbolic.
    Every problem is a `CheckpointError` naming the file.
    """
    onnx = require("onnx", extra="onnx", purpose="reading ONNX models")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except FileNotFoundError:
        raise CheckpointError(f"ONNX file {path} does not exist; check the path") from None
    except Exception as exc:  # protobuf DecodeError, ValidationError, OSError
        raise CheckpointError(
            f"{path} is not a valid ONNX model ({first_line(exc)}); export it again"
        ) from None
    initializers = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if not inputs:
        raise CheckpointError(f"{path} has no inputs; export the model with its inputs")
    specs = []
    for index, item in enumerate(inputs):
        tensor = item.type.tensor_type
        dtype = _ONNX_DTYPES.get(tensor.elem_type)
        if dtype is None:
            raise CheckpointError(
                f"{path} input {item.name!r} has ONNX element type {tensor.elem_type}, which "
                "jiasu does not feed; export it with float or integer inputs"
            )
        dims: list[int | str] = []
        for axis, dim in enumerate(tensor.shape.dim):
            if axis == 0:
                dims.append("B")
            elif dim.HasField("dim_value") and dim.dim_value > 0:
                dims.append(int(dim.dim_value))
            else:
                dims.append(_symbol(dim.dim_param, index, axis))
        if not dims:
            raise CheckpointError(
                f"{path} input {item.name!r} is a scalar; jiasu needs a batch axis first"
            )
        name = (
            item.name
            if item.name.replace("_", "a").replace(".", "a").isalnum()
            else f"input_{index}"
        )
        specs.append(InputSpec(name, dtype, tuple(dims)))
    style = "keyword" if len(specs) > 1 else "positional"
    return InputSignature(tuple(specs), style)  # type: ignore[arg-type]


def _symbol(param: str, index: int, axis: int) -> str:
    cleaned = "".join(c if c.isalnum() or c == "_" else "_" for c in param)
    return cleaned if cleaned and not cleaned[0].isdigit() else f"d{index}_{axis}"


def read_onnx_input_shape(path: Path) -> tuple[int, ...]:
    """The per-sample shape of an ONNX model with one float input of fixed sample axes."""
    signature = read_onnx_signature(path)
    shape = signature.single_float_shape()
    if shape is None:
        raise CheckpointError(
            f"{path} takes {signature.describe()}; this needs one float input of fixed size"
        )
    return shape
