"""The `jiasu predict` session: an optimized artifact run on a file of the user's inputs.

`predict_file` checks the output path, loads the artifact, reads the inputs in the
artifact's signature (`jiasu.data.inputs.read_inputs`: .npz, .npy, .csv, .parquet, IDX
or a folder of images), predicts here or on Ray / Spark workers, and writes .npy or .csv.
Predicted classes are given only for a classifier's output (N, classes); for any other
output, asking for classes is one sentence before the work starts.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from jiasu.app import Log
from jiasu.core.errors import ConfigError
from jiasu.core.signature import take
from jiasu.data.inputs import InputData

ENGINES = ("ray", "spark")


@dataclasses.dataclass(frozen=True)
class Prediction:
    """What a predict session produced: the model's `outputs` (N, ...), the predicted
    `classes` (N,) int64 when they were asked for, the `data` read, and where the result
    was written (None: nowhere, the caller shows the classes)."""

    outputs: np.ndarray
    classes: np.ndarray | None
    data: InputData
    candidate: str
    written: Path | None


def predict_file(
    artifact: Path,
    input_path: Path,
    *,
    output: Path | None = None,
    classes: bool = False,
    label_column: str | None = None,
    engine: str | None = None,
    workers: int = 2,
    address: str | None = None,
    batch_size: int = 1024,
    trust_code: bool = False,
    log: Log | None = None,
) -> Prediction:
    """Run the artifact in `artifact` on the inputs in `input_path`.

    Without `output` the predicted classes are returned for the caller to show, so the
    model must be a classifier (output (N, classes)); with `output` (.npy or .csv) the
    outputs are written, or the classes with `classes=True`. `engine` ("ray" or "spark")
    spreads the batches over `workers` workers; the predictions equal one process's.
    """
    from jiasu.core.outputs import Output, check_outputs
    from jiasu.data.finite import NonFiniteInputWarning
    from jiasu.data.inputs import check_output_suffix, read_inputs, write_outputs
    from jiasu.infer import load

    if engine is not None and engine not in ENGINES:
        raise ConfigError(f"engine {engine!r} is unknown; use one of {', '.join(ENGINES)}")
    if output is not None:
        check_output_suffix(output)
    check_outputs(
        [Output("--output", output)], inputs={"--input": input_path, "ARTIFACT": artifact}
    )
    predictor = load(artifact, trust_code=trust_code)
    data = read_inputs(input_path, predictor.signature, label_column=label_column)
    _warn_nonfinite(data, input_path, log)
    want_classes = classes or output is None
    with warnings.catch_warnings():  # said once above, for the whole file
        warnings.simplefilter("ignore", NonFiniteInputWarning)
        if want_classes:  # one sample first: a model without classes fails before the work
            _check_classifier(predictor.predict_numpy(take(data.arrays, slice(0, 1))), output)
        if engine is None:
            outputs = _predict_here(predictor.predict_numpy, data.arrays, batch_size)
        else:
            from jiasu.engines import predict_distributed
            from jiasu.infer.artifact import PredictorFactory

            outputs = predict_distributed(
                PredictorFactory(artifact, trust_code=trust_code), data.arrays, engine=engine,
                workers=workers, address=address, batch_size=batch_size,
            )  # fmt: skip
    predicted = outputs.argmax(axis=1).astype(np.int64) if want_classes else None
    if output is not None:
        write_outputs(output, predicted if classes and predicted is not None else outputs)
    return Prediction(outputs, predicted, data, predictor.name, output)


def _check_classifier(probe: np.ndarray, output: Path | None) -> None:
    from jiasu.core.task import classifier_shaped

    if classifier_shaped(probe.shape):
        return
    shape = ("N", *probe.shape[1:])
    fix = "drop --classes" if output is not None else "pass --output out.npy or out.csv"
    raise ConfigError(
        f"the model's output has shape ({', '.join(map(str, shape))}), not (N, classes) "
        f"scores, so it has no classes to give; {fix} to save the output as it is"
    )


def _predict_here(
    predict: Callable[[tuple[np.ndarray, ...]], np.ndarray],
    arrays: tuple[np.ndarray, ...],
    batch_size: int,
) -> np.ndarray:
    parts = [
        predict(take(arrays, slice(start, start + batch_size)))
        for start in range(0, arrays[0].shape[0], batch_size)
    ]
    return np.concatenate(parts)


def _warn_nonfinite(data: InputData, path: Path, log: Log | None) -> int:
    """Say through `log` how many inputs hold NaN or infinity; return that number."""
    from jiasu.data.finite import nonfinite_message

    bad = np.zeros(len(data), dtype=bool)
    for array in data.arrays:
        if array.dtype.kind == "f":
            bad |= ~np.isfinite(array.reshape(len(array), -1)).all(axis=1)
    count = int(bad.sum())
    if count and log is not None:
        log(f"warning: {nonfinite_message(count, len(data), str(path))}")
    return count
