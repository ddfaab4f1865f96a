"""Update all parameters in one fused (or multi-tensor) optimizer kernel."""

from __future__ import annotations

import dataclasses
from typing import Literal

from jiasu.core.errors import ConfigError
from jiasu.core.technique import (
    Applicability,
    Effect,
    Exactness,
    Kind,
    Stage,
    register_technique,
)
from jiasu.train.setup import TrainSetup, TrainTechnique

# Optimizers whose torch implementation accepts fused=True on CPU and CUDA (torch ≥ 2.4).
FUSED_OPTIMIZERS = frozenset({"adam", "adamw", "sgd", "adagrad"})
FOREACH_OPTIMIZERS = frozenset({"adam", "adamw", "nadam", "adamax", "sgd", "adagrad", "rmsprop"})


@register_technique
@dataclasses.dataclass(frozen=True)
class FusedOptimizer(TrainTechnique):
    """One kernel for the whole parameter update instead of a loop over parameters.

    ``mode="fused"`` uses torch's fused implementation where the optimizer has one,
    else the multi-tensor (``foreach``) one. Same update rule; the arithmetic is
    grouped differently, so results agree to float rounding.
    """

    name = "fused_optimizer"
    effect = Effect(Stage.TRAIN, Kind.SOFTWARE, Exactness.NUMERIC)
    summary = "fused / multi-tensor optimizer step"
    plain_function = "torch.optim.Adam(params, fused=True)"

    mode: Literal["fused", "foreach"] = "fused"

    def __post_init__(self) -> None:
        if self.mode not in ("fused", "foreach"):
            raise ConfigError(
                f"technique 'fused_optimizer': mode must be 'fused' or 'foreach', got {self.mode!r}"
            )

    def applies_to(self, setup: TrainSetup) -> Applicability:
        if setup.optimizer not in FOREACH_OPTIMIZERS:
            return Applicability.no(f"optimizer {setup.optimizer!r} has no fused or foreach step")
        return Applicability.yes()

    def configure(self, setup: TrainSetup) -> TrainSetup:
        fused = self.mode == "fused" and setup.optimizer in FUSED_OPTIMIZERS
        options = {"fused": True} if fused else {"foreach": True}
        return dataclasses.replace(setup, optimizer_options={**setup.optimizer_options, **options})
