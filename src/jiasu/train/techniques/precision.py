"""Mixed precision: bf16 autocast (CPU with bf16 units, CUDA) and fp16 with a gradient scaler."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Literal

import torch
from torch import nn

from jiasu.core.errors import ConfigError
from jiasu.core.technique import Applicability, Effect, Exactness, Kind, Stage, register_technique
from jiasu.hardware.cpu import accel_features
from jiasu.train.setup import BoundRun, StepAction, StepHooks, TrainSetup, TrainTechnique

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def cpu_has_bf16_units() -> bool:
    """AVX-512 BF16 or AMX-BF16: bf16 matrix maths in hardware rather than emulated."""
    features = accel_features()
    return features.get("avx512_bf16", False) or features.get("amx_bf16", False)


@register_technique
@dataclasses.dataclass(frozen=True)
class MixedPrecision(TrainTechnique):
    """Run the forward pass and loss under autocast; weights and optimizer stay fp32.

    bf16 has fp32's exponent range, so it needs no loss scaling; it pays where the
    hardware has bf16 matrix units (AMX or AVX-512 BF16 on CPUs, tensor cores on GPUs)
    and the layers are large enough for the maths to dominate. fp16 (CUDA only) needs a
    gradient scaler, which this technique brings; in a recipe, put it after
    ``accumulate`` so that it unscales the gradients once per optimizer step.
    """

    name = "mixed_precision"
    effect = Effect(Stage.TRAIN, Kind.HARDWARE, Exactness.NUMERIC)
    summary = "bf16 / fp16 autocast for the forward pass (fp32 master weights)"
    plain_function = "torch.autocast(device_type, dtype=torch.bfloat16)"

    dtype: Literal["bf16", "fp16"] = "bf16"

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ConfigError(
                f"technique 'mixed_precision': dtype must be 'bf16' or 'fp16', got {self.dtype!r}"
            )

    def applies_to(self, setup: TrainSetup) -> Applicability:
        kind = setup.device.type
        if self.dtype == "fp16" and kind != "cuda":
            return Applicability.no(f"fp16 with loss scaling is for CUDA; this run is on {kind}")
        if self.dtype == "bf16" and kind == "cpu" and not cpu_has_bf16_units():
            return Applicability.no(
                "this CPU has no bf16 units (AVX-512 BF16 or AMX): "
                "bf16 would be emulated and slower"
            )
        if kind not in ("cpu", "cuda"):
            return Applicability.no(f"autocast to {self.dtype} is not supported here on {kind}")
        return Applicability.yes()

    def configure(self, setup: TrainSetup) -> TrainSetup:
        return dataclasses.replace(setup, autocast_dtype=DTYPES[self.dtype])

    def start(self, run: BoundRun) -> StepHooks | None:
        return _GradScaling(run.optimizer) if self.dtype == "fp16" else None


class _GradScaling(StepHooks):
    """fp16 loss scaling: scale the loss, unscale gradients once per step, step via the scaler."""

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer
        self.scaler = torch.amp.GradScaler("cuda")

    def scale_loss(self, loss: torch.Tensor) -> torch.Tensor:
        return self.scaler.scale(loss)

    def after_backward(self, model: nn.Module, last_in_epoch: bool) -> StepAction:
        self.scaler.unscale_(self.optimizer)  # clip_norm and others after this see true grads
        return StepAction.STEP

    def step(self, optimizer: torch.optim.Optimizer) -> bool:
        self.scaler.step(optimizer)  # skips the step itself if gradients overflowed
        self.scaler.update()
        return True

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"scale": torch.tensor(self.scaler.get_scale())}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        if "scale" in state:
            self.scaler.update(float(state["scale"]))
