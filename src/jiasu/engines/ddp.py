"""`ddp_fit`: `jiasu.fit` on one rank of a torch.distributed group.

Every rank builds the same seeded model and loads the job's data itself (a picklable
`DataSource`: nothing large travels through the engine), then calls `fit` with a
`DataParallel` strategy: the one trainer, the one loop. The strategy

- shards the training samples with DistributedSampler semantics (one seeded
  permutation, padded to a multiple of the world size, rank r takes every
  world-size-th index from r; in memory or streamed), so every rank runs the same
  number of batches; DDP averages the gradients, so W ranks with batch B train like one
  process with batch W·B;
- all-reduces each epoch's training figures and gives every rank rank 0's buffers
  (BatchNorm statistics: one model);
- measures validation and target data on a slice per rank and gathers the outputs, so
  every metric is the whole data's (R², the user's own) and every rank reads rank 0's
  figures: the callbacks and the target check take the same decision on every rank, at
  the same step;
- reseeds each rank's RNG from (seed, epoch, rank) at every epoch, so a restarted run
  replays exactly what the uninterrupted run would have done;
- lets rank 0 alone write checkpoints, into the engine's storage, after every epoch;
  every rank resumes from the engine's last one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import signal
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Subset

from jiasu.core.errors import ConfigError
from jiasu.core.recipe import Recipe
from jiasu.data.examples import Examples, StreamingExamples
from jiasu.engines.base import WorkerContext
from jiasu.engines.data import DataSource
from jiasu.models import ModelSpec
from jiasu.train import checkpoint as ckpt
from jiasu.train.callbacks import Callback, RunState
from jiasu.train.data import Samples
from jiasu.train.evaluate import figures_of
from jiasu.train.fit import fit
from jiasu.train.history import EpochRecord
from jiasu.train.loaders import Batch
from jiasu.train.loop import EpochFigures, LiveRun
from jiasu.train.model_arg import ExternalModel
from jiasu.train.settings import TrainSettings
from jiasu.train.setup import TrainSetup
from jiasu.train.strategy import SaveFn, Strategy


@dataclasses.dataclass(frozen=True)
class CrashOnce:
    """Fault injection: SIGKILL the worker of `rank` once, at `step` of `epoch`.

    The first time the point is reached the marker file is created and the process
    kills itself; a restarted run finds the marker and goes on. For fault-tolerance
    tests and demonstrations.
    """

    marker: str
    rank: int = 1
    epoch: int = 2
    step: int = 5

    def maybe_crash(self, rank: int, epoch: int, step: int) -> None:
        if (rank, epoch, step) != (self.rank, self.epoch, self.step):
            return
        try:
            fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.close(fd)
        os.kill(os.getpid(), signal.SIGKILL)


@dataclasses.dataclass(frozen=True)
class TrainJob:
    """A data-parallel training run: everything a worker needs, picklable.

    `model` is a registry `ModelSpec` or an `ExternalModel` whose builder pickles (a
    ``package.module:factory`` named by the user: every worker imports that module).
    `data` is a picklable `DataSource` (each worker loads the data itself). `settings`
    are the run's hyper-parameters; batch size and lr are per worker. `callbacks` run on
    every rank; checkpoints are written by rank 0 through the engine's storage after
    every epoch when `checkpoint_every_epoch` is set.
    """

    model: ModelSpec | ExternalModel
    data: DataSource
    settings: TrainSettings = dataclasses.field(default_factory=TrainSettings)
    recipe: Recipe | None = None
    callbacks: Sequence[Callback] = ()
    checkpoint_every_epoch: bool = True
    crash: CrashOnce | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.settings, TrainSettings):
            raise ConfigError(
                f"settings must be a TrainSettings, got {type(self.settings).__name__}"
            )


@dataclasses.dataclass(frozen=True)
class RankResult:
    """What rank 0 returns: the trained weights, the history and how long things took."""

    model_state: dict[str, torch.Tensor]
    history: dict[str, Any]
    world_size: int
    threads_per_worker: int
    resumed_from_epoch: int  # 0 when the run started fresh
    setup_seconds: float  # from entering the worker function to the first batch
    loop_seconds: float  # the epochs, validation included


def shard_indices(n: int, rank: int, world_size: int, seed: int) -> torch.Tensor:
    """DistributedSampler(shuffle=True, drop_last=False) on `n` samples, as a tensor.

    >>> shard_indices(5, 0, 2, seed=0).shape[0], shard_indices(5, 1, 2, seed=0).shape[0]
    (3, 3)
    """
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    total = -(-n // world_size) * world_size
    if total > n:  # pad by repeating the start, as DistributedSampler does
        order = torch.cat([order, order[: total - n]])
    return order[rank:total:world_size]


def ddp_fit(ctx: WorkerContext, job: TrainJob) -> RankResult:
    """Train `job` on this rank; every rank of the group must call it."""
    start = time.perf_counter()
    data = job.data()
    settings = job.settings
    if settings.num_workers is None:  # W ranks already decode in parallel: no probing
        settings = dataclasses.replace(settings, num_workers=0)
    settings = dataclasses.replace(settings, device=ctx.device)
    target = data.test if data.test is not None else data.val
    torch.manual_seed(settings.seed)  # the same initial weights on every rank
    model = job.model.build()
    strategy = DataParallel(ctx, job, start)
    history = fit(
        model, data, settings=settings, recipe=job.recipe, callbacks=job.callbacks,
        target_data=target if settings.target_accuracy is not None else None,
        task=data.task, quiet=True, model_spec=job.model, strategy=strategy,
    )  # fmt: skip
    return RankResult(
        model_state={k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        history=history.to_dict(),
        world_size=ctx.world_size,
        threads_per_worker=ctx.threads,
        resumed_from_epoch=strategy.resumed_from_epoch,
        setup_seconds=strategy.setup_seconds,
        loop_seconds=strategy.loop_seconds,
    )


class DataParallel(Strategy):
    """`fit` on one rank of the engine's torch.distributed group (the module docstring
    says what each hook does)."""

    def __init__(self, ctx: WorkerContext, job: TrainJob, started: float) -> None:
        self.ctx, self.job, self.started = ctx, job, started
        self.rank, self.world_size = ctx.rank, ctx.world_size
        self.epoch = 0
        self.live: LiveRun | None = None
        self.resumed_from_epoch = 0
        self.setup_seconds = self.loop_seconds = 0.0
        self._loop_start = 0.0
        self._saved_epoch = -1
        self._new_folder: Path | None = None

    def describe(self, device_reason: str) -> str:
        return f"rank {self.rank} of {self.world_size}"

    def shard(self, train: Samples, seed: int) -> Samples:
        if isinstance(train, DataLoader):
            raise ConfigError(
                "a DataLoader cannot be sharded over the workers; give the Dataset it loads"
            )
        index = shard_indices(len(train), self.rank, self.world_size, seed)  # type: ignore[arg-type]
        if isinstance(train, Examples | StreamingExamples):
            return train.take(index)
        return Subset(train, index.tolist())

    def configure(self, setup: TrainSetup) -> TrainSetup:
        # The engine owns the threads: a technique asking for every CPU would oversubscribe.
        return dataclasses.replace(setup, num_threads=self.ctx.threads)

    def wrap(self, live: LiveRun) -> LiveRun:
        device = live.setup.device
        device_ids = [device.index] if device.type == "cuda" else None
        step_model = DistributedDataParallel(live.step_model, device_ids=device_ids)
        batches = live.batches
        if self.job.crash is not None:
            batches = _Crashing(batches, self.job.crash, self)
        self.live = dataclasses.replace(live, step_model=step_model, batches=batches)
        return self.live

    def checkpoint_saver(self, save: SaveFn) -> SaveFn:
        """Rank 0 writes into the engine's storage, once per epoch (ModelCheckpoint and
        the engine may both ask); the directory a callback names is ignored, because
        checkpoints live where the engine finds them."""

        def save_once(directory: Path, keep: int) -> None:
            if self.epoch == self._saved_epoch or not self.ctx.is_rank_zero:
                return
            self._saved_epoch = self.epoch
            staging = self.ctx.store.staging_dir()
            save(staging, 2)
            self._new_folder = ckpt.resolve_checkpoint(staging)

        return save_once

    def resume_point(
        self, resume_from: str | Path | None
    ) -> contextlib.AbstractContextManager[str | Path | None]:
        return self.ctx.store.restore()

    def begin(self, run: RunState) -> None:
        self.epoch = self.resumed_from_epoch = run.epoch
        self._loop_start = time.perf_counter()
        self.setup_seconds = self._loop_start - self.started

    def begin_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        torch.manual_seed(_epoch_seed(self.job.settings.seed, epoch, self.rank))

    def reduce(self, live: LiveRun, figures: EpochFigures) -> EpochFigures:
        names = sorted(figures.train_metrics)
        n = figures.samples
        totals = torch.tensor(
            [figures.train_loss * n, *(figures.train_metrics[k] * n for k in names), n],
            dtype=torch.float64, device=live.setup.device,
        )  # fmt: skip
        dist.all_reduce(totals)
        _broadcast_buffers(live.model)  # BatchNorm statistics of rank 0 everywhere: one model
        seen = float(totals[-1])
        sums = dict(zip(names, totals[1:-1].tolist(), strict=True))
        metrics = {k: (round(v) if k == "accuracy" else v) / seen for k, v in sums.items()}
        return dataclasses.replace(
            figures, train_loss=float(totals[0]) / seen, train_metrics=metrics,
            samples=round(seen),
        )  # fmt: skip

    def measure(self, live: LiveRun, data: Samples) -> dict[str, float]:
        _broadcast_buffers(live.model)  # rank 0's model, on every rank's slice
        n = len(data.dataset if isinstance(data, DataLoader) else data)  # type: ignore[arg-type]
        if isinstance(data, DataLoader) or n < self.world_size:
            figures = live.measure_here(data)  # not sliced: every rank measures it whole
        else:
            bounds = torch.linspace(0, n, self.world_size + 1).round().long().tolist()
            lo, hi = bounds[self.rank], bounds[self.rank + 1]
            part = (
                data.take(slice(lo, hi))
                if isinstance(data, Examples | StreamingExamples)
                else Subset(data, range(lo, hi))
            )
            outputs, targets = live.outputs_here(part)
            sizes = [b - a for a, b in itertools.pairwise(bounds)]
            figures = figures_of(live.objective, _gather(outputs, sizes), _gather(targets, sizes))
        shared: list[Any] = [figures]
        dist.broadcast_object_list(shared, src=0)  # bit for bit rank 0's: one decision
        return dict(shared[0])

    def end_epoch(self, run: RunState, record: EpochRecord) -> None:
        if self.job.checkpoint_every_epoch:
            run.save_checkpoint(Path(), 2)
        folder, self._new_folder = self._new_folder, None
        self.ctx.store.commit(folder, _metrics(record))

    def end(self, run: RunState) -> None:
        self.loop_seconds = time.perf_counter() - self._loop_start


def _gather(part: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    """Every rank's `part` (rank r holds sizes[r] rows), concatenated in rank order."""
    longest = max(sizes)
    padded = torch.zeros((longest, *part.shape[1:]), dtype=part.dtype, device=part.device)
    padded[: part.shape[0]] = part
    pieces = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(pieces, padded)
    return torch.cat([piece[:size] for piece, size in zip(pieces, sizes, strict=True)])


def _epoch_seed(seed: int, epoch: int, rank: int) -> int:
    return (seed * 1_000_003 + epoch * 10_007 + rank) % (2**63)


class _Crashing:
    """The epoch's batches, with the fault injection checked before each one."""

    def __init__(self, batches: Iterable[Batch], crash: CrashOnce, strategy: DataParallel) -> None:
        self.batches, self.crash, self.strategy = batches, crash, strategy

    def __len__(self) -> int:
        return len(self.batches)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[Batch]:
        for step, batch in enumerate(self.batches):
            self.crash.maybe_crash(self.strategy.rank, self.strategy.epoch, step)
            yield batch


def _broadcast_buffers(module: nn.Module) -> None:
    for buffer in module.buffers():
        dist.broadcast(buffer, src=0)


def _metrics(record: EpochRecord) -> dict[str, float]:
    values = {"epoch": float(record.epoch), "train_loss": record.train_loss}
    values.update({k: v for k, v in record.metrics.items() if k.startswith("val_")})
    return values
