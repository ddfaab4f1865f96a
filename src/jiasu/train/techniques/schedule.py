"""Optimisation changes: large batches with lr scaling, warm-up, one-cycle, label smoothing.

These change *what* is computed, not just how: they are approximate, and a recipe that
uses them is judged by the accuracy it reaches and the time it takes to get there.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Literal

import torch
from torch import nn

from jiasu.core.errors import ConfigError
from jiasu.core.technique import (
    Applicability,
    Effect,
    Exactness,
    Kind,
    Stage,
    check_int,
    check_number,
    register_technique,
)
from jiasu.train.setup import BoundRun, StepHooks, TrainSetup, TrainTechnique

APPROXIMATE = Effect(Stage.TRAIN, Kind.SOFTWARE, Exactness.APPROXIMATE)
MAX_BATCH_SIZE = 1 << 20  # samples per step; far beyond any dataset jiasu trains on


def scaled_lr(lr: float, base_batch: int, batch: int, rule: str) -> float:
    """Learning rate for `batch` given `lr` tuned at `base_batch`: linear or square-root rule."""
    ratio = batch / base_batch
    return lr * (ratio if rule == "linear" else math.sqrt(ratio) if rule == "sqrt" else 1.0)


@register_technique
@dataclasses.dataclass(frozen=True)
class LargeBatch(TrainTechnique):
    """Train with `batch_size` samples per step and scale the learning rate to match.

    Fewer, larger steps use the hardware better (bigger matrix products, less per-step
    overhead). ``lr_scaling`` = "linear" (Goyal et al.), "sqrt" (a safer default for
    Adam) or "none".
    """

    name = "large_batch"
    effect = APPROXIMATE
    summary = "larger batches with learning-rate scaling"
    plain_function = "jiasu.train.techniques.schedule.scaled_lr"

    batch_size: int = 256
    lr_scaling: Literal["linear", "sqrt", "none"] = "sqrt"

    def __post_init__(self) -> None:
        check_int(self.name, "batch_size", self.batch_size, minimum=1, maximum=MAX_BATCH_SIZE)
        if self.lr_scaling not in ("linear", "sqrt", "none"):
            raise ConfigError(
                f"technique 'large_batch': lr_scaling must be linear, sqrt or none, "
                f"got {self.lr_scaling!r}"
            )

    def applies_to(self, setup: TrainSetup) -> Applicability:
        if setup.data == "dataloader":
            return Applicability.no("the batches come from the user's DataLoader, as it makes them")
        if self.batch_size <= setup.batch_size:
            return Applicability.no(
                f"batch size {self.batch_size} is not larger than the run's {setup.batch_size}"
            )
        if setup.num_train_samples and self.batch_size > setup.num_train_samples:
            return Applicability.no(
                f"batch size {self.batch_size} exceeds the "
                f"{setup.num_train_samples} training samples"
            )
        return Applicability.yes()

    def configure(self, setup: TrainSetup) -> TrainSetup:
        lr = scaled_lr(setup.lr, setup.batch_size, self.batch_size, self.lr_scaling)
        return dataclasses.replace(setup, batch_size=self.batch_size, lr=lr)


class _LrSchedule(StepHooks):
    """Sets every group's lr from a function of the optimizer-step count."""

    def __init__(self, optimizer: torch.optim.Optimizer, lr_at: object) -> None:
        self.optimizer = optimizer
        self.lr_at = lr_at
        self.steps = 0
        self._apply()

    def _apply(self) -> None:
        lr = self.lr_at(self.steps)  # type: ignore[operator]
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def after_step(self, model: nn.Module) -> None:
        self.steps += 1
        self._apply()

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"steps": torch.tensor(self.steps)}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        if "steps" in state:
            self.steps = int(state["steps"])
            self._apply()


def warmup_lr(step: int, *, peak_lr: float, warmup_steps: int) -> float:
    """Linear warm-up from peak/warmup_steps to the peak, then constant."""
    return peak_lr * min(1.0, (step + 1) / max(1, warmup_steps))


def one_cycle_lr(
    step: int, *, max_lr: float, total_steps: int, pct_start: float, div: float, final_div: float
) -> float:
    """Smith's one-cycle: cosine up from max_lr/div to max_lr, then down to max_lr/final_div."""
    up = max(1, round(total_steps * pct_start))
    if step < up:
        start, end, t = max_lr / div, max_lr, step / up
    else:
        start, end = max_lr, max_lr / final_div
        t = min(1.0, (step - up) / max(1, total_steps - up))
    return end + (start - end) * (1 + math.cos(math.pi * t)) / 2


@register_technique
@dataclasses.dataclass(frozen=True)
class LrWarmup(TrainTechnique):
    """Raise the learning rate linearly over the first `epochs` epochs (fractions allowed).

    Large batches with a scaled-up learning rate diverge early without it.
    """

    name = "lr_warmup"
    effect = APPROXIMATE
    summary = "linear learning-rate warm-up"
    plain_function = "jiasu.train.techniques.schedule.warmup_lr"
    conflicts_with = frozenset({"one_cycle"})

    epochs: float = 0.2

    def __post_init__(self) -> None:
        check_number(self.name, "epochs", self.epochs, above=0, at_most=1000)

    def start(self, run: BoundRun) -> StepHooks:
        steps = max(1, round(self.epochs * run.setup.steps_per_epoch))
        peak = run.setup.lr
        return _LrSchedule(run.optimizer, lambda s: warmup_lr(s, peak_lr=peak, warmup_steps=steps))


@register_technique
@dataclasses.dataclass(frozen=True)
class OneCycle(TrainTechnique):
    """One-cycle schedule over the whole run: warm up to `max_lr_factor` × lr, then anneal.

    Reaches a given accuracy in fewer epochs than a constant rate (Smith & Topin's
    "super-convergence"). The cycle spans every epoch of the run, so it replaces
    ReduceLROnPlateau rather than combining with it.
    """

    name = "one_cycle"
    effect = APPROXIMATE
    summary = "one-cycle learning-rate schedule"
    plain_function = "jiasu.train.techniques.schedule.one_cycle_lr"
    conflicts_with = frozenset({"lr_warmup"})

    max_lr_factor: float = 4.0
    pct_start: float = 0.25
    div: float = 25.0
    final_div: float = 1e3

    def __post_init__(self) -> None:
        check_number(self.name, "max_lr_factor", self.max_lr_factor, above=0, at_most=1000)
        check_number(self.name, "pct_start", self.pct_start, above=0, below=1)
        check_number(self.name, "div", self.div, above=0, at_most=1e6)
        check_number(self.name, "final_div", self.final_div, above=0, at_most=1e9)

    def start(self, run: BoundRun) -> StepHooks:
        total = run.setup.steps_per_epoch * run.setup.epochs
        max_lr = run.setup.lr * self.max_lr_factor
        return _LrSchedule(
            run.optimizer,
            lambda s: one_cycle_lr(
                s,
                max_lr=max_lr,
                total_steps=total,
                pct_start=self.pct_start,
                div=self.div,
                final_div=self.final_div,
            ),
        )


@register_technique
@dataclasses.dataclass(frozen=True)
class LabelSmoothing(TrainTechnique):
    """Cross-entropy against targets smoothed by `epsilon` (Szegedy et al.)."""

    name = "label_smoothing"
    effect = APPROXIMATE
    summary = "label smoothing in the loss"
    plain_function = "torch.nn.functional.cross_entropy(..., label_smoothing=epsilon)"

    epsilon: float = 0.1

    def __post_init__(self) -> None:
        check_number(self.name, "epsilon", self.epsilon, at_least=0, below=1)

    def applies_to(self, setup: TrainSetup) -> Applicability:
        if not setup.is_classification:
            return Applicability.no("a regression has no classes to smooth")
        if setup.custom_loss:
            return Applicability.no("the run trains with the user's own loss")
        return Applicability.yes()

    def configure(self, setup: TrainSetup) -> TrainSetup:
        return dataclasses.replace(setup, label_smoothing=float(self.epsilon))
