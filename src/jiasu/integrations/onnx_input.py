"""Adapt an ONNX model exported from TensorFlow/Keras to jiasu's (N, C, H, W) image input.

TensorFlow models take (N, H, W) or channels-last (N, H, W, C) images; `jiasu optimize`
verifies on MNIST as (N, 1, 28, 28). `adapt_onnx_input` prepends one exact node, a Reshape
(one channel, or flat input) or a Transpose (NCHW → NHWC), under a new input named "input".

>>> adapt_onnx_input("tf_model.onnx", "tf_model_nchw.onnx")  # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from jiasu.core.atomic import atomic_write_bytes
from jiasu.core.errors import ConfigError
from jiasu.core.extras import require
from jiasu.data.mnist import INPUT_SHAPE as MNIST_SHAPE

NEW_INPUT = "input"


def adapt_onnx_input(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    input_shape: tuple[int, ...] = MNIST_SHAPE,
) -> Path:
    """Write `source` to `target` taking (N, *input_shape); return `target`.

    A model that already takes (N, *input_shape) is copied unchanged.
    """
    from jiasu.models.onnx_file import read_onnx_input_shape

    onnx = require("onnx", extra="onnx", purpose="adapting an ONNX model's input")
    helper = onnx.helper
    shape = read_onnx_input_shape(Path(source))  # checks the file: one input, fixed dims
    model = onnx.load(str(source))
    graph = model.graph
    initializers = {init.name for init in graph.initializer}
    (old,) = [i for i in graph.input if i.name not in initializers]
    if shape == tuple(input_shape):
        atomic_write_bytes(target, model.SerializeToString())
        return Path(target)
    name = NEW_INPUT if old.name != NEW_INPUT else f"{NEW_INPUT}_nchw"
    batch = helper.make_tensor_value_info(
        name, old.type.tensor_type.elem_type, ["batch", *input_shape]
    )
    if len(input_shape) == 3 and shape == (input_shape[1], input_shape[2], input_shape[0]):
        node = helper.make_node("Transpose", [name], [old.name], perm=[0, 2, 3, 1])
    elif math.prod(shape) == math.prod(input_shape) and (len(shape) == 1 or input_shape[0] == 1):
        shape_name = f"{name}_reshape_to"
        graph.initializer.append(
            onnx.numpy_helper.from_array(_int64([0, *shape]), shape_name)  # 0: keep the batch
        )
        node = helper.make_node("Reshape", [name, shape_name], [old.name])
    else:
        raise ConfigError(
            f"{source} takes inputs of shape {shape}, which cannot be made from {input_shape} "
            "images by a reshape or a channels-last transpose"
        )
    graph.input.remove(old)
    graph.input.insert(0, batch)
    graph.node.insert(0, node)
    onnx.checker.check_model(model)
    atomic_write_bytes(target, model.SerializeToString())
    return Path(target)


def _int64(values: list[int]) -> object:
    import numpy as np

    return np.asarray(values, dtype=np.int64)
