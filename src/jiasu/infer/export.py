"""ONNX export shared by the ONNX Runtime and OpenVINO backends, and reading ONNX files.

The export uses torch's TorchScript-based exporter (``dynamo=False``): on the small
convolutional and dense models here it is fast (well under a second), needs no extra
package, and writes the plain Conv/Gemm graphs that ONNX Runtime's and NNCF's quantizers
recognise. The batch dimension is dynamic, so one file serves batch 1 and batch 256.
An operation the exporter does not support raises, and the caller records the failure.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import torch
from torch import nn

from jiasu.core.atomic import atomic_write_bytes
from jiasu.core.errors import CheckpointError, first_line
from jiasu.core.extras import require

OPSET = 17
INPUT_NAME = "input"
OUTPUT_NAME = "logits"


def export_onnx(
    module: nn.Module, input_shape: tuple[int, ...], path: Path, *, opset: int = OPSET
) -> Path:
    """Export `module` (eval mode, CPU) to `path` with a dynamic batch dimension.

    >>> from jiasu.models import create_model
    >>> export_onnx(create_model("mlp"), (1, 28, 28), Path("mlp.onnx"))  # doctest: +SKIP
    """
    onnx = require("onnx", extra="onnx", purpose="exporting to ONNX")
    example = torch.zeros((2, *input_shape), dtype=torch.float32)  # batch 2: not special-cased
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation notes are not the user's
        torch.onnx.export(
            module.eval(),
            (example,),
            buffer,  # type: ignore[arg-type]  # file-like objects are accepted
            dynamo=False,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            do_constant_folding=True,
        )
    data = buffer.getvalue()
    onnx.checker.check_model(onnx.load_from_string(data))
    atomic_write_bytes(path, data)
    return path


def read_onnx_input_shape(path: Path) -> tuple[int, ...]:
    """Check that `path` is a valid ONNX model with one input; return its per-sample shape.

    The first dimension is the batch (any value); the others must be fixed numbers.
    Every problem is a `CheckpointError` naming the file.
    """
    onnx = require("onnx", extra="onnx", purpose="reading ONNX models")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except FileNotFoundError:
        raise CheckpointError(f"ONNX file {path} does not exist; check the path") from None
    except Exception as exc:  # protobuf DecodeError, ValidationError, OSError
        first = first_line(exc)
        raise CheckpointError(
            f"{path} is not a valid ONNX model ({first}); export it again"
        ) from None
    initializers = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise CheckpointError(
            f"{path} has {len(inputs)} inputs; jiasu optimizes models with exactly one input"
        )
    dims = inputs[0].type.tensor_type.shape.dim
    shape = [d.dim_value if d.HasField("dim_value") else -1 for d in dims]
    if len(shape) < 2 or any(d <= 0 for d in shape[1:]):
        raise CheckpointError(
            f"{path} has input shape {shape}; jiasu needs (batch, fixed dims...), e.g. "
            f"[batch, 1, 28, 28]"
        )
    return tuple(shape[1:])
