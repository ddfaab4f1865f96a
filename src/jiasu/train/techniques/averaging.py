"""Weight averaging: an exponential moving average for evaluation, and Lookahead.

The founding document's "moving average" is `ema`; its "sticky" is our reading as
`lookahead`: fast weights explore, and every few steps are pulled back toward slow ones.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Mapping

import torch
from torch import nn

from jiasu.core.technique import (
    Effect,
    Exactness,
    Kind,
    Stage,
    check_int,
    check_number,
    register_technique,
)
from jiasu.train.setup import BoundRun, StepHooks, TrainTechnique


def float_tensors(model: nn.Module) -> list[torch.Tensor]:
    """Parameters and floating-point buffers (BN running stats), in state_dict order."""
    return [t for t in model.state_dict().values() if t.is_floating_point()]


# --- plain functions ---------------------------------------------------------------------
@torch.no_grad()
def ema_update(average: list[torch.Tensor], current: list[torch.Tensor], decay: float) -> None:
    """average ← decay · average + (1 − decay) · current, in place."""
    torch._foreach_lerp_(average, current, 1.0 - decay)


@torch.no_grad()
def lookahead_update(slow: list[torch.Tensor], fast: list[torch.Tensor], alpha: float) -> None:
    """slow ← slow + alpha · (fast − slow); fast ← slow, in place."""
    torch._foreach_lerp_(slow, fast, alpha)
    torch._foreach_copy_(fast, slow)


def _check_fraction(technique: str, field: str, value: object) -> None:
    check_number(technique, field, value, above=0, below=1)


# --- EMA -------------------------------------------------------------------------------
@register_technique
@dataclasses.dataclass(frozen=True)
class Ema(TrainTechnique):
    """Keep an exponential moving average of the weights; evaluate and finish with it.

    After every optimizer step: ``avg ← decay · avg + (1 − decay) · w`` over parameters
    and BN statistics. Validation runs with the average swapped in, and the model ends
    training holding the average. Smooths the last noisy steps of training.
    """

    name = "ema"
    effect = Effect(Stage.TRAIN, Kind.SOFTWARE, Exactness.APPROXIMATE)
    summary = "exponential moving average of the weights, used for evaluation"
    plain_function = "jiasu.train.techniques.averaging.ema_update"

    decay: float = 0.999

    def __post_init__(self) -> None:
        _check_fraction(self.name, "decay", self.decay)

    def start(self, run: BoundRun) -> StepHooks:
        return _Averaging(run.model, float(self.decay))


class _Averaging(StepHooks):
    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.average = [t.detach().clone() for t in float_tensors(model)]

    def after_step(self, model: nn.Module) -> None:
        ema_update(self.average, float_tensors(model), self.decay)

    @contextlib.contextmanager
    def eval_weights(self, model: nn.Module) -> Iterator[None]:
        live = float_tensors(model)
        saved = [t.clone() for t in live]
        with torch.no_grad():
            torch._foreach_copy_(live, self.average)
        try:
            yield
        finally:
            with torch.no_grad():
                torch._foreach_copy_(live, saved)

    def on_train_end(self, model: nn.Module) -> None:
        with torch.no_grad():
            torch._foreach_copy_(float_tensors(model), self.average)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {str(i): t for i, t in enumerate(self.average)}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        with torch.no_grad():
            for i, t in enumerate(self.average):
                if str(i) in state:
                    t.copy_(state[str(i)])


# --- Lookahead -------------------------------------------------------------------------
@register_technique
@dataclasses.dataclass(frozen=True)
class Lookahead(TrainTechnique):
    """Every `every` steps, move slow weights `alpha` of the way to the fast ones and reset.

    Zhang et al., "Lookahead Optimizer: k steps forward, 1 step back" (2019).
    """

    name = "lookahead"
    effect = Effect(Stage.TRAIN, Kind.SOFTWARE, Exactness.APPROXIMATE)
    summary = "Lookahead: periodic pull of fast weights toward slow weights"
    plain_function = "jiasu.train.techniques.averaging.lookahead_update"

    every: int = 5
    alpha: float = 0.5

    def __post_init__(self) -> None:
        check_int(self.name, "every", self.every, minimum=1, maximum=100_000)
        _check_fraction(self.name, "alpha", self.alpha)

    def start(self, run: BoundRun) -> StepHooks:
        return _LookingAhead(run.model, self.every, float(self.alpha))


class _LookingAhead(StepHooks):
    def __init__(self, model: nn.Module, every: int, alpha: float) -> None:
        self.every, self.alpha = every, alpha
        self.slow = [p.detach().clone() for p in model.parameters()]
        self.steps = 0

    def after_step(self, model: nn.Module) -> None:
        self.steps += 1
        if self.steps % self.every == 0:
            lookahead_update(self.slow, [p.data for p in model.parameters()], self.alpha)

    def state_dict(self) -> dict[str, torch.Tensor]:
        state = {str(i): t for i, t in enumerate(self.slow)}
        state["steps"] = torch.tensor(self.steps)
        return state

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        with torch.no_grad():
            for i, t in enumerate(self.slow):
                if str(i) in state:
                    t.copy_(state[str(i)])
        if "steps" in state:
            self.steps = int(state["steps"])
