"""Post-training int8 quantization: ONNX Runtime dynamic and static (QDQ), and NNCF for OpenVINO.

- *dynamic*: weights are int8 ahead of time; activation scales are computed on every call
  from the live tensor. No calibration data; on convolutions ONNX Runtime runs
  ConvInteger, which is often slower than fp32 on CPUs.
- *static*: activation scales are fixed from a few hundred calibration samples, written as
  QuantizeLinear/DequantizeLinear pairs (QDQ) that the runtime fuses into int8 kernels;
  weights per output channel. The calibration method sets each activation's range:
  ``minmax`` (the observed extremes), ``entropy`` (the range minimising the KL divergence
  between the fp32 and int8 histograms) or ``percentile`` (the 99.999th percentile of |x|).
- *NNCF* quantizes an OpenVINO model with its own calibration (mixed preset, bias correction).

Every form is approximate: a candidate it produces must pass the accuracy budget.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jiasu.core.errors import ConfigError
from jiasu.core.extras import require

CALIBRATIONS = ("minmax", "entropy", "percentile")
CALIBRATION_BATCH = 32  # samples per calibration call: bounds the histogram collectors' memory


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence the quantizers' prints, log warnings and progress bars (they are not ours)."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        logging.disable(previous)


def _ort_quantization() -> Any:
    return require("onnxruntime.quantization", extra="onnx", purpose="int8 quantization")


def preprocess(src: Path, dst: Path) -> Path:
    """ONNX Runtime's recommended pre-processing (shape inference, graph clean-up).

    Falls back to `src` unchanged when the pre-processor cannot handle the graph.
    """
    shape_inference = require(
        "onnxruntime.quantization.shape_inference", extra="onnx", purpose="int8 quantization"
    )
    try:
        # Where symbolic shape inference is incomplete, ONNX Runtime saves the graph as
        # "sym_shape_infer_temp.onnx" (and its data) in the working folder: keep that in
        # the run's scratch folder, never beside the user's files.
        with contextlib.chdir(dst.parent):
            shape_inference.quant_pre_process(
                str(src.resolve()), str(dst.resolve()), skip_symbolic_shape=False
            )
        return dst
    except Exception:  # pre-processing is an optimisation, not a requirement
        return src


def quantize_dynamic(src: Path, dst: Path) -> Path:
    """Dynamic int8: int8 weights, activation scales computed per call."""
    q = _ort_quantization()
    with quiet():
        q.quantize_dynamic(str(src), str(dst), weight_type=q.QuantType.QInt8, per_channel=False)
    return dst


def _reader(base: type, samples: Mapping[str, np.ndarray]) -> Any:
    """ONNX Runtime's calibration reader: `get_next()` → a feed dict, or None at the end."""
    rows = min(len(a) for a in samples.values())

    class Reader(base):
        def __init__(self) -> None:
            # Equal-sized batches only: the histogram calibrators (entropy, percentile)
            # stack per-batch outputs and fail on a shorter last batch.
            size = min(CALIBRATION_BATCH, rows)
            self._batches: Iterator[dict[str, np.ndarray]] = (
                {name: np.ascontiguousarray(a[i : i + size]) for name, a in samples.items()}
                for i in range(0, rows - size + 1, size)
            )

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._batches, None)

    return Reader()


def quantize_static(
    src: Path,
    dst: Path,
    calibration: Mapping[str, np.ndarray],
    *,
    method: str = "minmax",
    per_channel: bool = True,
) -> Path:
    """Static int8 in QDQ format, activations calibrated on `calibration`: the model's
    inputs by name, each (N, ...).

    >>> quantize_static(Path("m.onnx"), Path("q.onnx"), {"input": x[:300]})  # doctest: +SKIP
    """
    if method not in CALIBRATIONS:
        raise ConfigError(
            f"calibration method {method!r} is unknown; use one of {', '.join(CALIBRATIONS)}"
        )
    if not calibration or min(len(a) for a in calibration.values()) < 1:
        raise ConfigError("static quantization needs calibration samples; got none")
    q = _ort_quantization()
    methods = {
        "minmax": q.CalibrationMethod.MinMax,
        "entropy": q.CalibrationMethod.Entropy,
        "percentile": q.CalibrationMethod.Percentile,
    }
    reader = _reader(q.CalibrationDataReader, calibration)
    with quiet():
        _quantize_static(q, src, dst, reader, methods[method], per_channel)
    return dst


def _quantize_static(
    q: Any, src: Path, dst: Path, reader: Any, method: Any, per_channel: bool
) -> None:
    q.quantize_static(
        str(src),
        str(dst),
        reader,
        quant_format=q.QuantFormat.QDQ,
        per_channel=per_channel,
        activation_type=q.QuantType.QInt8,
        weight_type=q.QuantType.QInt8,
        calibrate_method=method,
        extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
    )


def quantize_nncf(model: Any, calibration: Sequence[np.ndarray], *, transformer: bool) -> Any:
    """An OpenVINO model quantized to int8 by NNCF, calibrated one sample a call.

    `calibration` holds one (N, ...) array per model input, in order. A transformer
    (attention) gets NNCF's transformer scheme, which keeps the operations that lose
    most in int8 (softmax, layer norm, the residual adds) in floating point.
    """
    nncf = require("nncf", extra="openvino", purpose="OpenVINO int8 quantization")
    rows = min(len(a) for a in calibration)
    items = [[a[i : i + 1] for a in calibration] for i in range(rows)]  # one sample per call
    extra: dict[str, Any] = {"model_type": nncf.ModelType.TRANSFORMER} if transformer else {}
    with quiet():
        return nncf.quantize(model, nncf.Dataset(items), subset_size=len(items), **extra)
