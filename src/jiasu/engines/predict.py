"""`predict_distributed`: batch inference of a model on Ray Data or Spark.

The model travels as a picklable *predictor factory*: a callable with no arguments
that returns ``predict(batch) -> np.ndarray``, where `batch` is one array for a
one-input model and a tuple of arrays, in the model's signature order, for a model
of several inputs (``input_ids`` and ``attention_mask``). Each worker calls the
factory once and reuses the predictor for every batch. `ModelDirPredictor` is the
factory for a jiasu model directory; any other picklable factory of that shape (such
as an optimized artifact's `jiasu.infer.artifact.PredictorFactory`) works the same way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeAlias

import numpy as np
import torch

from jiasu.core.errors import ConfigError
from jiasu.core.registry import Registry
from jiasu.core.signature import take
from jiasu.data import ImageDataset

# One array (one-input model) or a tuple of arrays in signature order, each (B, ...).
Batch: TypeAlias = np.ndarray | tuple[np.ndarray, ...]
Predict: TypeAlias = Callable[[Batch], np.ndarray]
PredictorFactory: TypeAlias = Callable[[], Predict]
Inputs: TypeAlias = np.ndarray | torch.Tensor | ImageDataset | Sequence[np.ndarray | torch.Tensor]


@dataclasses.dataclass(frozen=True)
class PredictJob:
    """One batch-inference run, as a batch-inference engine receives it."""

    factory: PredictorFactory
    inputs: tuple[np.ndarray, ...]  # each (N, ...) C-contiguous, in signature order
    workers: int
    threads_per_worker: int
    batch_size: int
    address: str | None

    @property
    def count(self) -> int:
        """The number of samples (rows) to predict."""
        return int(self.inputs[0].shape[0])


def call_predict(predict: Predict, arrays: Sequence[np.ndarray]) -> np.ndarray:
    """`predict` on one batch: the array itself for one input, the tuple for several."""
    return np.asarray(predict(arrays[0] if len(arrays) == 1 else tuple(arrays)))


@dataclasses.dataclass(frozen=True)
class ModelDirPredictor:
    """Predictor factory for a jiasu model directory: logits (B, classes) as float32.

    >>> predict = ModelDirPredictor("model-dir")()  # doctest: +SKIP
    >>> predict(np.zeros((2, 1, 28, 28), np.float32)).shape  # doctest: +SKIP
    (2, 10)
    """

    path: str
    threads: int = 1

    def __call__(self) -> Predict:
        from jiasu.hardware.threads import set_threads
        from jiasu.models import load_model_dir

        set_threads(self.threads)
        model = load_model_dir(self.path).model

        @torch.inference_mode()
        def predict(batch: Batch) -> np.ndarray:
            (array,) = batch if isinstance(batch, tuple) else (batch,)  # a model dir: one input
            x = torch.from_numpy(np.require(array, np.float32, ["C_CONTIGUOUS", "WRITEABLE"]))
            return model(x).numpy()

        return predict


PREDICT_ENGINES: Registry[Callable[[PredictJob], np.ndarray]] = Registry("inference engine")


@PREDICT_ENGINES.register("local")
def predict_local(job: PredictJob) -> np.ndarray:
    """The single-process reference: the same predictor, batch after batch, in this process."""
    predict = job.factory()
    parts = [
        call_predict(predict, take(job.inputs, slice(start, start + job.batch_size)))
        for start in range(0, job.count, job.batch_size)
    ]
    return np.concatenate(parts) if parts else np.zeros((0,), np.float32)


@PREDICT_ENGINES.register("ray")
def _predict_ray(job: PredictJob) -> np.ndarray:
    from jiasu.engines.ray_data import predict_ray

    return predict_ray(job)


@PREDICT_ENGINES.register("spark")
def _predict_spark(job: PredictJob) -> np.ndarray:
    from jiasu.engines.spark_udf import predict_spark

    return predict_spark(job)


def predict_distributed(
    model: str | Path | PredictorFactory,
    inputs: Inputs,
    *,
    engine: str = "ray",
    workers: int = 2,
    address: str | None = None,
    batch_size: int = 256,
    threads_per_worker: int | None = None,
) -> np.ndarray:
    """Predict `inputs` on `workers` workers; rows keep their order.

    `inputs` is one array (N, *sample_shape), or a tuple of arrays (each (N, ...)) in the
    model's signature order for a model of several inputs; dtypes are kept (token ids
    stay integers), but float64 becomes float32.
    `model` is a jiasu model directory or a picklable predictor factory. `engine` is
    ``ray`` (Ray Data `map_batches` on a fixed actor pool), ``spark`` (Spark
    `predict_batch_udf`) or ``local`` (this process, the reference). Returns the
    stacked outputs, e.g. logits (N, classes) for a classifier.

    >>> logits = predict_distributed("model-dir", images, engine="spark")  # doctest: +SKIP
    """
    from jiasu.engines.base import EngineOptions

    options = EngineOptions(workers=workers, threads_per_worker=threads_per_worker)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    if isinstance(model, str | Path):
        from jiasu.models import load_model_dir

        path = str(Path(model).resolve())
        load_model_dir(path)  # a bad directory fails here, before any engine starts
        factory: PredictorFactory = ModelDirPredictor(path, options.threads)
    elif callable(model):
        factory = model
    else:
        raise ConfigError(
            f"model must be a model directory or a predictor factory, got {type(model).__name__}"
        )
    run = PREDICT_ENGINES.get(engine)
    arrays = _as_arrays(inputs)
    job = PredictJob(factory, arrays, workers, options.threads, batch_size, address)
    return run(job)


def _as_arrays(inputs: Inputs) -> tuple[np.ndarray, ...]:
    if isinstance(inputs, ImageDataset):
        inputs = inputs.images
    several = isinstance(inputs, list | tuple)
    items = list(inputs) if isinstance(inputs, list | tuple) else [inputs]
    if not items:
        raise ConfigError("inputs is an empty sequence; pass one array, or one per model input")
    arrays = []
    for item in items:
        if isinstance(item, torch.Tensor):
            item = item.detach().cpu().numpy()
        lowest = 1 if several else 2  # a lone array is (N, *sample_shape)
        if not isinstance(item, np.ndarray) or item.ndim < lowest or item.dtype.kind not in "biuf":
            raise ConfigError(
                f"inputs must be an array (N, *sample_shape) of numbers, or a tuple of such "
                f"arrays, got {type(item).__name__} of shape {getattr(item, 'shape', None)}"
            )
        dtype = np.float32 if item.dtype.kind == "f" and item.dtype != np.float16 else item.dtype
        arrays.append(np.ascontiguousarray(item, dtype=dtype))
    counts = {a.shape[0] for a in arrays}
    if len(counts) > 1:
        raise ConfigError(
            f"the input arrays hold different numbers of samples ({sorted(counts)}); give "
            "every input one row per sample"
        )
    return tuple(arrays)
