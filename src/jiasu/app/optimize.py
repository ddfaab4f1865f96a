"""The `jiasu optimize` session: resolve the model, gather the data, run the search.

Which data verifies the candidates:

- ``data`` (a file or folder the user names: .npz, .npy, .csv, .parquet, an image folder)
  is read in the model's signature; its labels (an .npz ``labels`` array, a CSV/Parquet
  ``label_column``, the class folders of images) make the task's metric the check, and
  without labels agreement with eager fp32 is. Its first rows (up to
  `calibration_samples`, at most half) calibrate int8; the others verify.
- With no data, a model that takes MNIST images (1, 28, 28) — the demo — is verified on
  the MNIST test set and calibrated on MNIST training images.
- Any other model without data is timed on inputs generated from its signature:
  accuracy is not verified, and nothing approximate is accepted.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
from pathlib import Path

import numpy as np

from jiasu.app import Log
from jiasu.core.errors import ConfigError
from jiasu.core.signature import InputSignature, take
from jiasu.core.task import Task
from jiasu.data.mnist import INPUT_SHAPE as MNIST_SHAPE
from jiasu.data.mnist import MNIST_TASK
from jiasu.infer.backends.base import ModelSource
from jiasu.infer.optimize import OptimizeConfig, optimize
from jiasu.infer.report import OptimizeResult
from jiasu.ui.progress import TaskProgress


@dataclasses.dataclass(frozen=True)
class OptimizeRequest:
    """What the user asked `jiasu optimize` for, as plain values."""

    model: str
    weights: Path | None = None
    signature: InputSignature | None = None  # --input-spec / --input-shape
    output: str | None = None  # the model output to verify and serve
    data: Path | None = None  # the user's inputs (and labels)
    label_column: str | None = None
    metric: str | None = None
    data_dir: Path | None = None  # where MNIST is, for the demo's models
    eval_samples: int = 10_000
    calibration_samples: int = 300
    out: Path | None = None
    trust_code: bool = False  # a model directory may import the factory it names


@dataclasses.dataclass(frozen=True)
class Evidence:
    """Where the validation inputs came from, in one line for the user."""

    description: str
    inputs: tuple[np.ndarray, ...] | None
    labels: np.ndarray | None
    calibration: tuple[np.ndarray, ...] | None
    task: Task | None = None


def run_optimize(
    request: OptimizeRequest,
    config: OptimizeConfig,
    *,
    progress: TaskProgress | None = None,
    log: Log = lambda _line: None,
) -> OptimizeResult:
    """Resolve the model, gather the data (`Evidence`), and run `optimize`."""
    from jiasu.infer.model_source import resolve_model

    signature = request.signature
    if signature is None and request.data is not None and _needs_signature(request):
        from jiasu.data.inputs import infer_signature  # the data says what the model takes

        signature = infer_signature(request.data, label_column=request.label_column)
    # An adapted copy of an ONNX input lives here for the run.
    with tempfile.TemporaryDirectory(prefix="jiasu-optimize-") as scratch:
        source = resolve_model(
            request.model, weights=request.weights, signature=signature,
            output=request.output, trust_code=request.trust_code,
        )  # fmt: skip
        if request.data is None and request.signature is None:
            source = _for_mnist(source, Path(scratch), log)
        evidence = gather(source, request)
        takes = source.signature.describe()
        log(f"model: {source.description} ({takes}); data: {evidence.description}")
        return optimize(
            source,
            evidence.inputs,
            evidence.labels,
            evidence.calibration,
            config,
            out=request.out,
            task=evidence.task,
            metric=request.metric,
            progress=progress,
        )


def _needs_signature(request: OptimizeRequest) -> bool:
    """Whether MODEL is code (a registry name or a factory), which does not say what it
    takes, unlike a model directory or an ONNX or Keras file."""
    from jiasu.models.argument import parse_model_argument

    kind = parse_model_argument(request.model, weights=request.weights).kind
    return kind in ("registry", "factory")


def gather(source: ModelSource, request: OptimizeRequest) -> Evidence:
    """The inputs that verify and calibrate: the user's data, MNIST for MNIST-shaped
    models, or none (then optimize generates inputs and verifies nothing)."""
    if request.data is not None:
        from jiasu.data.inputs import read_inputs

        read = read_inputs(request.data, source.signature, label_column=request.label_column)
        rows = read.arrays[0].shape[0]
        cal_rows = min(request.calibration_samples, rows // 2)
        calibration = take(read.arrays, slice(0, cal_rows)) if cal_rows else None
        end = cal_rows + request.eval_samples
        inputs = take(read.arrays, slice(cal_rows, end))
        labels = read.labels[cal_rows:end] if read.labels is not None else None
        what = "labelled" if labels is not None else "unlabelled (verified by agreement with fp32)"
        verifying = min(rows - cal_rows, request.eval_samples)
        description = f"{read.source}: {verifying} {what} samples verify, {cal_rows} calibrate"
        # a model directory knows its task (e.g. regression): verify on its metric
        task = source.task if labels is not None and request.metric is None else None
        return Evidence(description, inputs, labels, calibration, task)
    if source.signature.single_float_shape() == MNIST_SHAPE:
        from jiasu.data import load_mnist

        if request.metric not in (None, "accuracy"):
            raise ConfigError(
                f"metric {request.metric} needs your labels; MNIST is verified on accuracy, "
                "so pass --data with your inputs and labels"
            )
        splits = load_mnist(request.data_dir)
        test = splits.test.take(request.eval_samples)
        # the last training images: disjoint from the test set
        calibration = (splits.train.images[-request.calibration_samples :].numpy(),)
        return Evidence(
            f"{splits.source} (MNIST test images verify, training images calibrate)",
            (test.images.numpy(),),
            test.labels.numpy(),
            calibration,
            MNIST_TASK,
        )
    if request.metric is not None:
        raise ConfigError(f"metric {request.metric} needs labels; pass --data with your labels")
    return Evidence(
        "none given: inputs generated from the signature time the candidates; accuracy is "
        "not verified, so nothing approximate (int8, bf16) is accepted (pass --data)",
        None,
        None,
        None,
    )


def _for_mnist(source: ModelSource, scratch: Path, log: Log) -> ModelSource:
    """An ONNX file taking MNIST images in another layout — (28, 28) or (28, 28, 1), as
    TensorFlow exports them, or flat (784,) — gets one exact Reshape or Transpose node in
    front (`adapt_onnx_input`), and says so, so it is verified on MNIST like the demo's."""
    shape = source.signature.single_float_shape()
    if source.kind != "onnx" or shape is None or shape == MNIST_SHAPE:
        return source
    if math.prod(shape) != math.prod(MNIST_SHAPE):
        return source
    from jiasu.infer.model_source import resolve_model
    from jiasu.integrations.onnx_input import adapt_onnx_input

    assert source.onnx_path is not None
    adapted = adapt_onnx_input(source.onnx_path, scratch / "adapted.onnx", MNIST_SHAPE)
    log(
        f"{source.description} takes {shape}; optimizing it with one exact node in front so "
        "it takes (N, 1, 28, 28) images (the artifact takes those)"
    )
    return dataclasses.replace(resolve_model(str(adapted)), description=source.description)
