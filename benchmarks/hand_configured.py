"""Each runtime set up the way its documentation's first example does, one per process.

`benchmarks/infer_mnist.py` times these with `jiasu.measure.isolated`: each factory runs
in a fresh worker process (as a deployed model would), builds its runtime from files on
disk and returns the zero-argument call to time on the saved input batch.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch


def _batch(inputs: str) -> np.ndarray:
    return np.load(inputs, allow_pickle=False)


def eager(model_dir: str, inputs: str) -> Callable[[], object]:
    """The trained model in PyTorch eager mode under `torch.no_grad()`: the baseline."""
    from jiasu.models import load_model_dir

    model, x = load_model_dir(model_dir).model.eval(), torch.from_numpy(_batch(inputs))

    def run() -> object:
        with torch.no_grad():
            return model(x)

    return run


def compiled(model_dir: str, inputs: str) -> Callable[[], object]:
    """`torch.compile(model)` with its defaults."""
    from jiasu.models import load_model_dir

    model = torch.compile(load_model_dir(model_dir).model.eval())
    x = torch.from_numpy(_batch(inputs))

    def run() -> object:
        with torch.no_grad():
            return model(x)

    return run


def onnxruntime_defaults(onnx_path: str, inputs: str) -> Callable[[], object]:
    """`ort.InferenceSession(path)` with default options on the CPU provider."""
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    name, x = session.get_inputs()[0].name, _batch(inputs)
    return lambda: session.run(None, {name: x})


def openvino_defaults(onnx_path: str, inputs: str) -> Callable[[], object]:
    """`ov.Core().compile_model(path, "CPU")` with default settings."""
    import openvino as ov

    compiled_model = ov.Core().compile_model(onnx_path, "CPU")
    x = _batch(inputs)
    return lambda: compiled_model(x)
