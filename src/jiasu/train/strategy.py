"""How many processes train one model together: the seam between `fit` and the engines.

`fit` is the one trainer: it resolves the task and the recipe, builds the live run
(`build_live_run`) and runs the epochs, validation, target checks, callbacks and
checkpoints. A `Strategy` is asked at each point where one process and a data-parallel
group differ, and `SingleProcess` (this class's behaviour) answers "as one process
would". `jiasu.engines.ddp.DataParallel` answers for a rank of a torch.distributed
group: it shards the training samples, wraps the step model in DistributedDataParallel,
all-reduces the epoch's training figures, measures validation and target data on
shards and gathers the outputs (so every metric, R² included, is the whole data's and
every rank takes the same decisions), and lets rank 0 alone write checkpoints.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jiasu.train.callbacks import RunState
    from jiasu.train.data import Samples
    from jiasu.train.history import EpochRecord
    from jiasu.train.loop import EpochFigures, LiveRun
    from jiasu.train.setup import TrainSetup

SaveFn = Callable[[Path, int], None]  # (directory, keep)


class Strategy:
    """One process trains on all the data; every hook is the identity.

    A data-parallel strategy overrides the hooks; `fit` calls them in this order:
    `shard` (the training samples, once the task is known), `configure` (after the
    recipe's techniques), `wrap` (the live run), `checkpoint_saver` and `resume_point`
    (before the first epoch), `begin` ... per epoch `begin_epoch`, the steps,
    `reduce` (the epoch's training figures), `measure` (validation, and target checks
    inside the epoch), `end_epoch` (after the callbacks) ... `end`.
    """

    rank: int = 0
    world_size: int = 1

    def describe(self, device_reason: str) -> str:
        """`History.device_reason` for this process."""
        return device_reason

    def shard(self, train: Samples, seed: int) -> Samples:
        """This process's training samples."""
        return train

    def configure(self, setup: TrainSetup) -> TrainSetup:
        """The setup once the techniques configured it (e.g. the engine's threads)."""
        return setup

    def wrap(self, live: LiveRun) -> LiveRun:
        """The live run as this strategy steps it (e.g. DDP around `step_model`)."""
        return live

    def checkpoint_saver(self, save: SaveFn) -> SaveFn:
        """What `RunState.save_checkpoint` does: `save` itself, in one process."""
        return save

    def resume_point(
        self, resume_from: str | Path | None
    ) -> contextlib.AbstractContextManager[str | Path | None]:
        """The checkpoint to resume from (None: start fresh), for the block."""
        return contextlib.nullcontext(resume_from)

    def begin(self, run: RunState) -> None:
        """Before the first epoch (after any resume)."""

    def begin_epoch(self, epoch: int) -> None:
        """Before epoch `epoch`'s first step (1-based)."""

    def reduce(self, live: LiveRun, figures: EpochFigures) -> EpochFigures:
        """The epoch's training figures over every process."""
        return figures

    def measure(self, live: LiveRun, data: Samples) -> dict[str, float]:
        """Loss and metrics of the model on `data` (the same on every process)."""
        return live.measure_here(data)

    def end_epoch(self, run: RunState, record: EpochRecord) -> None:
        """After the epoch's callbacks ran (e.g. the engine's checkpoint)."""

    def end(self, run: RunState) -> None:
        """After the last epoch."""


class SingleProcess(Strategy):
    """One process trains on all the data (what `fit` does unless told otherwise)."""
