"""Callbacks: ReduceLROnPlateau, EarlyStopping and ModelCheckpoint, Keras semantics.

A callback sees the run at three points (train begin, epoch end, train end) through
`RunState`, and can save and restore its own state so a resumed run continues exactly.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from jiasu.core.errors import ConfigError
from jiasu.train.history import METRICS, EpochRecord, History
from jiasu.train.metrics import lower_is_better


@dataclass
class RunState:
    """The live run as callbacks see it."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    history: History
    has_validation: bool
    save_checkpoint: Callable[[Path, int], None]  # (directory, keep)
    stop_training: bool = False
    epoch: int = 0  # epochs completed
    log: Callable[[str], None] = field(default=lambda message: None)
    # every figure an epoch record holds (train_loss, val_mse, val_<user metric>, ...)
    metric_names: tuple[str, ...] = METRICS


class Callback:
    """Base class; override only the hooks you need."""

    def on_train_begin(self, run: RunState) -> None:
        """Called once before the first epoch (also on resume)."""

    def on_epoch_end(self, run: RunState, record: EpochRecord) -> None:
        """Called after each epoch, validation included."""

    def on_train_end(self, run: RunState) -> None:
        """Called once after the last epoch."""

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state, saved in checkpoints."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""


class _Monitor:
    """Tracks the best value of one metric; losses and errors go down, the others up."""

    def __init__(self, owner: str, monitor: str, min_delta: float) -> None:
        if not isinstance(monitor, str) or not monitor.startswith(("train_", "val_")):
            raise ConfigError(
                f"{owner}: monitor must be one of {', '.join(METRICS)} (or train_/val_ and a "
                f"metric's name, e.g. val_mse), got {monitor!r}"
            )
        if not min_delta >= 0:
            raise ConfigError(f"{owner}: min_delta must be >= 0, got {min_delta!r}")
        self.owner, self.monitor, self.min_delta = owner, monitor, float(min_delta)
        self.lower_is_better = lower_is_better(monitor)
        self.best = math.inf if self.lower_is_better else -math.inf

    def check(self, run: RunState) -> None:
        if self.monitor.startswith("val_") and not run.has_validation:
            raise ConfigError(
                f"{self.owner} monitors {self.monitor!r} but there is no validation data; "
                f"set validation_split > 0 or monitor a train_ metric"
            )
        if self.monitor not in run.metric_names:
            raise ConfigError(
                f"{self.owner}: monitor must be one of {', '.join(run.metric_names)} (what "
                f"this run records), got {self.monitor!r}"
            )

    def improved(self, value: float) -> bool:
        if self.lower_is_better:
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def value(self, record: EpochRecord) -> float:
        value = record.metric(self.monitor)
        assert value is not None  # guaranteed by check()
        return value


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by `factor` when `monitor` stops improving.

    After `patience` epochs without an improvement larger than `min_delta`, every
    parameter group's lr becomes ``max(lr * factor, min_lr)``; then `cooldown` epochs
    pass before counting again. Same rules as Keras's callback of that name.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        *,
        factor: float = 0.1,
        patience: int = 10,
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
    ) -> None:
        if not 0.0 < factor < 1.0:
            raise ConfigError(f"ReduceLROnPlateau: factor must be in (0, 1), got {factor!r}")
        if patience < 0 or cooldown < 0:
            raise ConfigError("ReduceLROnPlateau: patience and cooldown must be >= 0")
        self._monitor = _Monitor("ReduceLROnPlateau", monitor, min_delta)
        self.factor, self.patience, self.cooldown, self.min_lr = factor, patience, cooldown, min_lr
        self.wait = 0
        self.cooldown_left = 0

    def on_train_begin(self, run: RunState) -> None:
        self._monitor.check(run)

    def on_epoch_end(self, run: RunState, record: EpochRecord) -> None:
        value = self._monitor.value(record)
        if self.cooldown_left > 0:
            self.cooldown_left -= 1
            self.wait = 0
        if self._monitor.improved(value):
            self._monitor.best = value
            self.wait = 0
            return
        if self.cooldown_left > 0:
            return
        self.wait += 1
        if self.wait >= self.patience:
            for group in run.optimizer.param_groups:
                old = float(group["lr"])
                if old > self.min_lr:
                    group["lr"] = max(old * self.factor, self.min_lr)
            run.log(f"ReduceLROnPlateau: lr → {run.optimizer.param_groups[0]['lr']:.3g}")
            self.cooldown_left = self.cooldown
            self.wait = 0

    def state_dict(self) -> dict[str, Any]:
        return {"best": self._monitor.best, "wait": self.wait, "cooldown_left": self.cooldown_left}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._monitor.best = float(state["best"])
        self.wait, self.cooldown_left = int(state["wait"]), int(state["cooldown_left"])


class EarlyStopping(Callback):
    """Stop when `monitor` has not improved for `patience` epochs.

    With `restore_best_weights`, the model ends with the weights of its best epoch.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        *,
        patience: int = 3,
        min_delta: float = 0.0,
        restore_best_weights: bool = False,
    ) -> None:
        if patience < 0:
            raise ConfigError(f"EarlyStopping: patience must be >= 0, got {patience!r}")
        self._monitor = _Monitor("EarlyStopping", monitor, min_delta)
        self.patience, self.restore_best_weights = patience, restore_best_weights
        self.wait = 0
        self.best_epoch = 0
        self._best_state: dict[str, torch.Tensor] | None = None

    def on_train_begin(self, run: RunState) -> None:
        self._monitor.check(run)

    def on_epoch_end(self, run: RunState, record: EpochRecord) -> None:
        value = self._monitor.value(record)
        if self._monitor.improved(value):
            self._monitor.best, self.wait, self.best_epoch = value, 0, record.epoch
            if self.restore_best_weights:
                self._best_state = copy.deepcopy(run.model.state_dict())
            return
        self.wait += 1
        if self.wait > self.patience:
            run.stop_training = True
            run.log(f"EarlyStopping: no gain in {self.monitor_name} since epoch {self.best_epoch}")

    def on_train_end(self, run: RunState) -> None:
        if self.restore_best_weights and self._best_state is not None and run.stop_training:
            run.model.load_state_dict(self._best_state)

    @property
    def monitor_name(self) -> str:
        return self._monitor.monitor

    def state_dict(self) -> dict[str, Any]:
        return {"best": self._monitor.best, "wait": self.wait, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._monitor.best = float(state["best"])
        self.wait, self.best_epoch = int(state["wait"]), int(state["best_epoch"])


class ModelCheckpoint(Callback):
    """Save a resumable checkpoint (safetensors + JSON) into `directory` after each epoch.

    Each checkpoint is a folder ``epoch-NNNN`` written under a temporary name and
    swapped in when complete; ``latest.json`` then points at it (also written atomically).
    Older checkpoints beyond `keep` are removed after the new one is in place, so a
    crash at any moment leaves at least one complete checkpoint. With `monitor`,
    ``save_best_only`` keeps only epochs that improve the metric.

    `directory` may hold other files: only jiasu's own ``epoch-NNNN`` folders (recognised
    by their checkpoint.json) are replaced or pruned, and a ``latest.json`` or a non-empty
    ``epoch-NNNN`` folder jiasu did not write is refused before training starts.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        monitor: str | None = None,
        save_best_only: bool = False,
        keep: int = 2,
    ) -> None:
        if save_best_only and monitor is None:
            raise ConfigError("ModelCheckpoint: save_best_only needs a monitor, e.g. 'val_loss'")
        if keep < 1:
            raise ConfigError(f"ModelCheckpoint: keep must be >= 1, got {keep!r}")
        self.directory = Path(directory)
        self._monitor = _Monitor("ModelCheckpoint", monitor, 0.0) if monitor else None
        self.save_best_only, self.keep = save_best_only, keep

    def on_train_begin(self, run: RunState) -> None:
        if self._monitor:
            self._monitor.check(run)
        from jiasu.train.checkpoint import check_checkpoint_dir

        check_checkpoint_dir(self.directory)

    def on_epoch_end(self, run: RunState, record: EpochRecord) -> None:
        if self._monitor is not None:
            value = self._monitor.value(record)
            better = self._monitor.improved(value)
            if better:
                self._monitor.best = value
            if self.save_best_only and not better:
                return
        run.save_checkpoint(self.directory, self.keep)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self._monitor.best} if self._monitor else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self._monitor and "best" in state:
            self._monitor.best = float(state["best"])
