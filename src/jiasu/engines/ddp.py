"""`ddp_fit`: jiasu's training step on one rank of a torch.distributed group.

Every rank builds the same seeded model, wraps it in DistributedDataParallel and trains
on its shard of the data: DistributedSampler semantics on in-memory tensors (one seeded
permutation, padded to a multiple of the world size, rank r takes every world-size-th
index from r), so every rank runs the same number of batches. Gradients are averaged
by DDP, so W ranks with batch B train like one process with batch W·B.

Everything else is `jiasu.train`'s own: the techniques (`apply_techniques`), the live
run with its optimizer, hooks and batches (`build_live_run`), the epoch (`run_epoch`,
with DDP as the step model), evaluation through the hooks' weights, the callbacks (run
identically on every rank, from metrics all-reduced over the ranks, so their
decisions agree) and the checkpoint files (`resume.save`/`resume.restore`; rank 0
writes them). Each rank reseeds its RNG from (seed, epoch, rank) at every epoch, so a
restarted run replays exactly what the uninterrupted run would have done.
"""

from __future__ import annotations

import dataclasses
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

from jiasu.core.errors import ConfigError
from jiasu.core.recipe import Recipe
from jiasu.data import ImageDataset
from jiasu.engines.base import WorkerContext
from jiasu.engines.data import DataSource
from jiasu.models import ModelSpec
from jiasu.train import checkpoint as ckpt
from jiasu.train import resume
from jiasu.train.callbacks import Callback, RunState
from jiasu.train.data import Arrays
from jiasu.train.finite import check_epoch_finite
from jiasu.train.fit import apply_techniques, build_live_run, process_settings
from jiasu.train.history import EpochRecord, History
from jiasu.train.loaders import Batch
from jiasu.train.loop import LiveRun, finish, run_epoch
from jiasu.train.setup import TrainSetup, TrainTechnique
from jiasu.ui.progress import TaskProgress


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

    `batch_size` is per worker. `data` is a picklable `DataSource` (each worker loads
    the data itself, so nothing large travels through the engine). `callbacks` run on
    every rank; checkpoints are written by rank 0 through the engine's storage after
    every epoch when `checkpoint_every_epoch` is set.
    """

    model: ModelSpec
    data: DataSource
    epochs: int = 1
    batch_size: int = 32
    optimizer: str = "adam"
    lr: float = 1e-3
    seed: int = 0
    recipe: Recipe | None = None
    callbacks: Sequence[Callback] = ()
    checkpoint_every_epoch: bool = True
    crash: CrashOnce | None = None

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")


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
    train, val = job.data()
    index = shard_indices(len(train), ctx.rank, ctx.world_size, job.seed)
    shard = Arrays(train.images[index], train.labels[index])  # this rank's samples
    val_shard = _val_shard(val, ctx) if val is not None else None

    torch.manual_seed(job.seed)  # the same initial weights on every rank
    setup = TrainSetup(
        model=job.model.build(),
        device=torch.device(ctx.device),
        batch_size=job.batch_size,
        lr=job.lr,
        optimizer=job.optimizer.lower(),
        num_train_samples=len(shard),
        epochs=job.epochs,
    )
    history = History(device=ctx.device, device_reason=f"rank {ctx.rank} of {ctx.world_size}")
    setup, active = apply_techniques(setup, _training_techniques(job.recipe), history)
    # The engine owns the threads: a technique asking for every CPU would oversubscribe.
    setup = dataclasses.replace(setup, num_threads=ctx.threads)
    with process_settings(setup):
        live, shuffle = build_live_run(setup, active, shard, job.seed)
        device_ids = [setup.device.index] if setup.device.type == "cuda" else None
        live = dataclasses.replace(
            live, step_model=DistributedDataParallel(live.step_model, device_ids=device_ids)
        )
        saver = _Saver(ctx, job, live, shuffle)
        run = RunState(live.model, live.optimizer, history, val is not None, save_checkpoint=saver)
        saver.run = run
        resumed = saver.restore()
        for callback in job.callbacks:
            callback.on_train_begin(run)
        setup_seconds = time.perf_counter() - start
        loop_start = time.perf_counter()
        _epochs(ctx, job, live, run, saver, val_shard)
        loop_seconds = time.perf_counter() - loop_start
        finish(live)
        for callback in job.callbacks:
            callback.on_train_end(run)
    return RankResult(
        model_state={k: v.detach().cpu().clone() for k, v in live.model.state_dict().items()},
        history=history.to_dict(),
        world_size=ctx.world_size,
        threads_per_worker=ctx.threads,
        resumed_from_epoch=resumed,
        setup_seconds=setup_seconds,
        loop_seconds=loop_seconds,
    )


def _epochs(
    ctx: WorkerContext,
    job: TrainJob,
    live: LiveRun,
    run: RunState,
    saver: _Saver,
    val: Arrays | None,
) -> None:
    quiet = TaskProgress(enabled=False)
    for epoch in range(run.epoch + 1, job.epochs + 1):
        torch.manual_seed(_epoch_seed(job.seed, epoch, ctx.rank))  # dropout etc., replayable
        lr = float(live.optimizer.param_groups[0]["lr"])
        if job.crash is None:
            figures = run_epoch(live, quiet, None)
        else:
            crashing = _Crashing(live.batches, job.crash, ctx.rank, epoch)
            figures = run_epoch(dataclasses.replace(live, batches=crashing), quiet, None)
        # (loss sum, correct, seen) over all ranks
        totals = torch.tensor(
            [figures.train_loss * figures.samples, figures.train_accuracy * figures.samples,
             figures.samples], dtype=torch.float64, device=live.setup.device,
        )  # fmt: skip
        dist.all_reduce(totals)
        _broadcast_buffers(live.model)  # BatchNorm statistics of rank 0 everywhere: one model
        val_loss = val_accuracy = None
        val_start = time.perf_counter()
        if val is not None:
            val_loss, val_accuracy = _sharded_evaluate(live, val)
        seen = float(totals[2])
        record = EpochRecord(
            epoch=epoch,
            train_loss=float(totals[0]) / seen,
            train_accuracy=round(float(totals[1])) / seen,
            val_loss=val_loss,
            val_accuracy=val_accuracy,
            lr=lr,
            train_seconds=figures.train_seconds,
            val_seconds=time.perf_counter() - val_start if val is not None else 0.0,
            samples_per_s=seen / figures.train_seconds,  # all ranks together
            samples=round(seen),
        )
        # Same weights on every rank after the all-reduce, so every rank stops together.
        check_epoch_finite(live.model, epoch, record.train_loss, val_loss, lr)
        run.history.epochs.append(record)
        run.epoch = epoch
        for callback in job.callbacks:
            callback.on_epoch_end(run, record)
        if job.checkpoint_every_epoch:
            saver.save()
        ctx.store.commit(saver.take_new_folder(), _metrics(record))
        if run.stop_training:
            run.history.stopped_early = epoch < job.epochs
            break


def _epoch_seed(seed: int, epoch: int, rank: int) -> int:
    return (seed * 1_000_003 + epoch * 10_007 + rank) % (2**63)


class _Crashing:
    """The epoch's batches, with the fault injection checked before each one."""

    def __init__(self, batches: Iterable[Batch], crash: CrashOnce, rank: int, epoch: int) -> None:
        self.batches, self.crash, self.rank, self.epoch = batches, crash, rank, epoch

    def __len__(self) -> int:
        return len(self.batches)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[Batch]:
        for step, batch in enumerate(self.batches):
            self.crash.maybe_crash(self.rank, self.epoch, step)
            yield batch


def _training_techniques(recipe: Recipe | None) -> list[TrainTechnique]:
    techniques = list(recipe.techniques) if recipe else []
    for technique in techniques:
        if not isinstance(technique, TrainTechnique):
            raise ConfigError(f"technique {technique.name!r} does not act on training")
    return techniques  # type: ignore[return-value]


def _val_shard(val: ImageDataset, ctx: WorkerContext) -> Arrays:
    """A contiguous slice of the validation set per rank (sums are all-reduced)."""
    bounds = torch.linspace(0, len(val), ctx.world_size + 1).round().long().tolist()
    lo, hi = bounds[ctx.rank], bounds[ctx.rank + 1]
    return Arrays(val.images[lo:hi], val.labels[lo:hi])


def _broadcast_buffers(module: nn.Module) -> None:
    for buffer in module.buffers():
        dist.broadcast(buffer, src=0)


def _sharded_evaluate(live: LiveRun, val: Arrays) -> tuple[float, float]:
    totals = torch.zeros(3, dtype=torch.float64, device=live.setup.device)
    if len(val):
        loss, accuracy = live.evaluate(val)
        n = len(val)
        totals += torch.tensor([loss * n, round(accuracy * n), n], dtype=torch.float64)
    dist.all_reduce(totals)
    return float(totals[0]) / float(totals[2]), float(totals[1]) / float(totals[2])


def _metrics(record: EpochRecord) -> dict[str, float]:
    values = {"epoch": float(record.epoch), "train_loss": record.train_loss}
    if record.val_accuracy is not None and record.val_loss is not None:
        values.update(val_loss=record.val_loss, val_accuracy=record.val_accuracy)
    return values


class _Saver:
    """Rank 0 writes jiasu checkpoints; every rank restores from the engine's last one.

    Also `RunState.save_checkpoint(directory, keep)` for callbacks: the directory a
    callback names is ignored, because checkpoints live where the engine finds them.
    """

    def __init__(
        self, ctx: WorkerContext, job: TrainJob, live: LiveRun, shuffle: torch.Generator
    ) -> None:
        self.ctx, self.job, self.live, self.shuffle = ctx, job, live, shuffle
        self.run: RunState | None = None
        self._new_folder: Path | None = None
        self._saved_epoch = -1

    def __call__(self, directory: Path, keep: int) -> None:
        self.save()

    def take_new_folder(self) -> Path | None:
        """The folder rank 0 wrote since the last call (None on other ranks or if none)."""
        folder, self._new_folder = self._new_folder, None
        return folder

    def save(self) -> None:
        run = self.run
        assert run is not None, "bind the run first"
        if run.epoch == self._saved_epoch or not self.ctx.is_rank_zero:
            return  # once per epoch (ModelCheckpoint and the engine may both ask)
        self._saved_epoch = run.epoch
        staging = self.ctx.store.staging_dir()
        recipe, spec = self.job.recipe, self.job.model
        resume.save(staging, 2, run, self.live, self.job.callbacks, self.shuffle, recipe, spec)
        self._new_folder = ckpt.resolve_checkpoint(staging)

    def restore(self) -> int:
        """Resume from the engine's last checkpoint; return its epoch (0: none)."""
        assert self.run is not None, "bind the run first"
        with self.ctx.store.restore() as folder:
            if folder is None:
                return 0
            resume.restore(folder, self.run, self.live, self.job.callbacks, self.shuffle)
        return self.run.epoch
