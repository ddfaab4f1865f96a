"""Graph compilation with torch.compile (and CUDA graphs through mode 'reduce-overhead')."""

from __future__ import annotations

import dataclasses

from jiasu.core.errors import ConfigError
from jiasu.core.technique import Applicability, Effect, Exactness, Kind, Stage, register_technique
from jiasu.train.setup import TrainSetup, TrainTechnique

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


@register_technique
@dataclasses.dataclass(frozen=True)
class Compile(TrainTechnique):
    """Compile the model with torch.compile (TorchInductor): fused kernels, less Python.

    Costs a compilation before the first step (seconds to tens of seconds on a CPU),
    which `fit` measures separately as ``compile_seconds``; it pays only when the
    steps saved outweigh it. Fused kernels reorder floating-point work: numeric.
    """

    name = "compile"
    effect = Effect(Stage.TRAIN, Kind.SOFTWARE, Exactness.NUMERIC)
    summary = "torch.compile (Inductor) of the model; compile time reported separately"
    plain_function = "torch.compile(model, mode=...)"
    conflicts_with = frozenset({"cuda_graphs"})

    mode: str = "default"

    def __post_init__(self) -> None:
        if self.mode not in COMPILE_MODES:
            raise ConfigError(
                f"technique 'compile': mode must be one of {', '.join(COMPILE_MODES)}, "
                f"got {self.mode!r}"
            )

    def applies_to(self, setup: TrainSetup) -> Applicability:
        if setup.device.type not in ("cpu", "cuda"):
            return Applicability.no(f"torch.compile's Inductor does not target {setup.device.type}")
        return Applicability.yes()

    def configure(self, setup: TrainSetup) -> TrainSetup:
        return dataclasses.replace(setup, compile_mode=self.mode)


@register_technique
@dataclasses.dataclass(frozen=True)
class CudaGraphs(TrainTechnique):
    """Capture the training step in CUDA graphs (torch.compile mode 'reduce-overhead').

    Removes per-kernel launch overhead, which dominates small models on fast GPUs.
    """

    name = "cuda_graphs"
    effect = Effect(Stage.TRAIN, Kind.HARDWARE, Exactness.NUMERIC)
    summary = "CUDA graphs through torch.compile(mode='reduce-overhead')"
    plain_function = "torch.compile(model, mode='reduce-overhead')"
    conflicts_with = frozenset({"compile"})

    def applies_to(self, setup: TrainSetup) -> Applicability:
        if setup.device.type != "cuda":
            return Applicability.no(
                f"CUDA graphs need a CUDA device; this run is on {setup.device.type}"
            )
        return Applicability.yes()

    def configure(self, setup: TrainSetup) -> TrainSetup:
        return dataclasses.replace(setup, compile_mode="reduce-overhead")
