"""`train_distributed`: one call that trains a `TrainJob` data-parallel on an engine."""

from __future__ import annotations

import dataclasses
import functools
import re
import time
from pathlib import Path

from torch import nn

from jiasu.core.errors import ConfigError
from jiasu.engines.base import EngineOptions, get_engine
from jiasu.engines.ddp import RankResult, TrainJob, ddp_fit
from jiasu.models import ModelSpec, save_model_dir
from jiasu.train.history import History


@dataclasses.dataclass(frozen=True)
class DistributedResult:
    """The trained model (rank 0's weights) and how the run went.

    `total_seconds` is the driver's wall clock (starting the engine and workers, loading
    data, training, stopping); `loop_seconds` is rank 0's time in the epochs, so
    `startup_seconds` is what the engine and the set-up cost on top.
    """

    model: nn.Module
    history: History
    job: TrainJob
    engine: str
    workers: int
    threads_per_worker: int
    resumed_from_epoch: int
    total_seconds: float
    loop_seconds: float

    @property
    def startup_seconds(self) -> float:
        return self.total_seconds - self.loop_seconds

    def save(self, directory: str | Path) -> Path:
        """Write a registry model as a jiasu model directory (what `jiasu predict` loads;
        `jiasu train --engine` saves any model with its data's signature and task)."""
        if not isinstance(self.job.model, ModelSpec):
            raise ConfigError(
                f"save {self.job.model.name!r} with jiasu.train.model_arg.save_trained and "
                "its data's signature and task"
            )
        last = self.history.last
        metrics = {k: v for k, v in dataclasses.asdict(last).items() if v is not None}
        metrics.update(engine=self.engine, workers=self.workers)
        recipe = self.job.recipe.to_dict() if self.job.recipe else None
        return save_model_dir(directory, self.model, self.job.model, recipe=recipe, metrics=metrics)


def train_distributed(
    job: TrainJob,
    *,
    engine: str = "local",
    workers: int = 2,
    address: str | None = None,
    threads_per_worker: int | None = None,
    backend: str = "gloo",
    max_failures: int = 0,
    storage_dir: str | Path | None = None,
) -> DistributedResult:
    """Train `job` on `workers` data-parallel workers of `engine` (local, ray or spark).

    Raises `ConfigError` for bad options, `MissingExtraError` when the engine's extra is
    not installed, and `EngineError` when the cluster cannot be reached or the workers
    fail more than `max_failures` times.

    >>> from jiasu.engines import MnistSource, TrainJob, train_distributed
    >>> from jiasu.models import ModelSpec
    >>> from jiasu.train import TrainSettings
    >>> job = TrainJob(ModelSpec("cnn"), MnistSource(train_samples=4000), TrainSettings(epochs=1))
    >>> result = train_distributed(job, engine="local", workers=2)  # doctest: +SKIP
    >>> result.history.last.val_accuracy  # doctest: +SKIP
    """
    options = EngineOptions(
        workers=workers,
        threads_per_worker=threads_per_worker,
        address=address,
        backend=backend,
        max_failures=max_failures,
        storage_dir=None if storage_dir is None else str(storage_dir),
        run_name="train-" + re.sub(r"[^\w.-]+", "-", job.model.name),
    )
    runner = get_engine(engine)
    start = time.perf_counter()
    rank0: RankResult = runner.run(functools.partial(ddp_fit, job=job), options)
    total = time.perf_counter() - start
    model = job.model.build()
    model.load_state_dict(rank0.model_state)
    model.eval()
    return DistributedResult(
        model=model,
        history=History.from_dict(rank0.history),
        job=job,
        engine=engine,
        workers=rank0.world_size,
        threads_per_worker=rank0.threads_per_worker,
        resumed_from_epoch=rank0.resumed_from_epoch,
        total_seconds=total,
        loop_seconds=rank0.loop_seconds,
    )
