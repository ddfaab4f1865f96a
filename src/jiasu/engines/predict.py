"""`predict_distributed`: batch inference of a model on Ray Data or Spark.

The model travels as a picklable *predictor factory*: a callable with no arguments
that returns ``predict(batch: np.ndarray) -> np.ndarray``. Each worker calls the
factory once and reuses the predictor for every batch. `ModelDirPredictor` is the
factory for a jiasu model directory; any other picklable factory of that shape (such
as a loaded optimized artifact) works the same way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TypeAlias

import numpy as np
import torch

from jiasu.core.errors import ConfigError
from jiasu.core.registry import Registry
from jiasu.data import ImageDataset

Predict: TypeAlias = Callable[[np.ndarray], np.ndarray]
PredictorFactory: TypeAlias = Callable[[], Predict]
Inputs: TypeAlias = np.ndarray | torch.Tensor | ImageDataset


@dataclasses.dataclass(frozen=True)
class PredictJob:
    """One batch-inference run, as a batch-inference engine receives it."""

    factory: PredictorFactory
    inputs: np.ndarray  # (N, *sample_shape) float32, C-contiguous
    workers: int
    threads_per_worker: int
    batch_size: int
    address: str | None


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
        def predict(batch: np.ndarray) -> np.ndarray:
            x = torch.from_numpy(np.require(batch, np.float32, ["C_CONTIGUOUS", "WRITEABLE"]))
            return model(x).numpy()

        return predict


PREDICT_ENGINES: Registry[Callable[[PredictJob], np.ndarray]] = Registry("inference engine")


@PREDICT_ENGINES.register("local")
def predict_local(job: PredictJob) -> np.ndarray:
    """The single-process reference: the same predictor, batch after batch, in this process."""
    predict = job.factory()
    parts = [
        predict(job.inputs[start : start + job.batch_size])
        for start in range(0, job.inputs.shape[0], job.batch_size)
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
    """Predict `inputs` (N, *sample_shape) on `workers` workers; rows keep their order.

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
    array = _as_array(inputs)
    job = PredictJob(factory, array, workers, options.threads, batch_size, address)
    return run(job)


def _as_array(inputs: Inputs) -> np.ndarray:
    if isinstance(inputs, ImageDataset):
        inputs = inputs.images
    if isinstance(inputs, torch.Tensor):
        inputs = inputs.detach().cpu().numpy()
    if not isinstance(inputs, np.ndarray) or inputs.ndim < 2:
        raise ConfigError(
            f"inputs must be an array (N, *sample_shape), got {type(inputs).__name__} "
            f"of shape {getattr(inputs, 'shape', None)}"
        )
    return np.ascontiguousarray(inputs, dtype=np.float32)
