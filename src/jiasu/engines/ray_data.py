"""Batch inference on Ray Data: `map_batches` over a fixed-size actor pool.

Each actor calls the predictor factory once. The pool cannot deadlock: the data
comes from blocks already in the object store (no read tasks, no `repartition`),
and the pool never holds every CPU of the cluster — a local instance gets one CPU
more than the pool, and on an existing cluster the pool shrinks to leave one free.
An actor pool that held every CPU, with a `repartition` before it, hung silently here.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from jiasu.core.extras import require
from jiasu.engines.base import EngineError
from jiasu.engines.predict import Predict, PredictJob, PredictorFactory, call_predict
from jiasu.engines.ray_train import ray_connection

BLOCKS_PER_ACTOR = 4


class _PredictActor:
    """One Ray Data actor: builds the predictor once, then maps batches."""

    def __init__(self, factory: PredictorFactory, threads: int, inputs: int) -> None:
        from jiasu.engines.base import set_worker_threads

        set_worker_threads(threads)
        self.predict: Predict = factory()
        self.columns = [_column(i) for i in range(inputs)]

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"prediction": call_predict(self.predict, [batch[c] for c in self.columns])}


def _column(index: int) -> str:
    """The dataset column of the model's `index`-th input (signature order)."""
    return f"input_{index}"


def pool_size(workers: int, threads: int, cluster_cpus: float) -> int:
    """Actors that fit beside one spare CPU (at least one actor).

    >>> pool_size(2, 1, 3.0), pool_size(4, 1, 2.0), pool_size(2, 2, 4.0)
    (2, 1, 1)
    """
    fits = math.floor((cluster_cpus - 1) / threads)
    return max(1, min(workers, fits))


def predict_ray(job: PredictJob) -> np.ndarray:
    ray = require("ray", extra="ray", purpose="the ray engine")
    require("ray.data", extra="ray", purpose="the ray engine")

    with ray_connection(job.address, num_cpus=job.workers * job.threads_per_worker + 1):
        cpus = float(ray.cluster_resources().get("CPU", 0))
        size = pool_size(job.workers, job.threads_per_worker, cpus)
        if cpus < job.threads_per_worker + 1:
            raise EngineError(
                f"the Ray cluster has {cpus:g} CPUs, too few for one {job.threads_per_worker}"
                "-thread inference actor plus one spare CPU; lower threads_per_worker"
            )
        context = ray.data.DataContext.get_current()
        previous = context.execution_options.preserve_order
        context.execution_options.preserve_order = True  # rows come back in input order
        try:
            dataset: Any = ray.data.from_blocks(_blocks(job, size * BLOCKS_PER_ACTOR))
            predicted = dataset.map_batches(
                _PredictActor,
                fn_constructor_args=(job.factory, job.threads_per_worker, len(job.inputs)),
                compute=ray.data.ActorPoolStrategy(size=size),
                num_cpus=job.threads_per_worker,
                batch_size=job.batch_size,
                batch_format="numpy",
            )
            parts = [
                batch["prediction"]
                for batch in predicted.iter_batches(batch_size=None, batch_format="numpy")
            ]
        finally:
            context.execution_options.preserve_order = previous
    result = np.concatenate(parts)
    if result.shape[0] != job.count:
        raise EngineError(f"Ray Data returned {result.shape[0]} predictions for {job.count} inputs")
    return result


def _blocks(job: PredictJob, count: int) -> list[Any]:
    """The inputs cut into about `count` Arrow blocks, one tensor column per model input
    (dtypes and per-sample shapes kept)."""
    from ray.data.block import BlockAccessor

    bounds = np.linspace(0, job.count, max(1, min(count, job.count)) + 1).astype(int)
    return [
        BlockAccessor.batch_to_block({_column(i): a[start:stop] for i, a in enumerate(job.inputs)})
        for start, stop in itertools.pairwise(bounds)
        if stop > start
    ]
