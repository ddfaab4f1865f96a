"""Device placement and the CUDA-only settings: cuDNN autotuning, pinned memory."""

from __future__ import annotations

import dataclasses

from jiasu.core.technique import Applicability, Effect, Exactness, Kind, Stage, register_technique
from jiasu.hardware.device import resolve_device
from jiasu.train.setup import TrainSetup, TrainTechnique


@register_technique
@dataclasses.dataclass(frozen=True)
class DevicePlacement(TrainTechnique):
    """Train on the fastest device present: CUDA, then Apple MPS, then XLA (TPU), else CPU."""

    name = "device_placement"
    effect = Effect(Stage.TRAIN, Kind.HARDWARE, Exactness.NUMERIC)
    summary = "train on the best accelerator present (CUDA, MPS, XLA), with the reason"
    plain_function = "jiasu.hardware.device.resolve_device('auto')"

    def applies_to(self, setup: TrainSetup) -> Applicability:
        device, reason = resolve_device("auto")
        if device.type == "cpu":
            return Applicability.no(reason)
        if device == setup.device:
            return Applicability.no(f"already on {device}")
        return Applicability.yes(reason)

    def configure(self, setup: TrainSetup) -> TrainSetup:
        device, _ = resolve_device("auto")
        return dataclasses.replace(setup, device=device)


@register_technique
@dataclasses.dataclass(frozen=True)
class CudnnBenchmark(TrainTechnique):
    """Let cuDNN time its convolution algorithms once and keep the fastest per shape."""

    name = "cudnn_benchmark"
    effect = Effect(Stage.TRAIN, Kind.HARDWARE, Exactness.NUMERIC)
    summary = "cuDNN autotuning of convolution algorithms"
    plain_function = "torch.backends.cudnn.benchmark = True"

    def applies_to(self, setup: TrainSetup) -> Applicability:
        if setup.device.type != "cuda":
            return Applicability.no(f"cuDNN is CUDA's; this run is on {setup.device.type}")
        if not setup.has_conv():
            return Applicability.no("the model has no convolution layers")
        return Applicability.yes()

    def configure(self, setup: TrainSetup) -> TrainSetup:
        return dataclasses.replace(setup, cudnn_benchmark=True)


@register_technique
@dataclasses.dataclass(frozen=True)
class PinnedMemory(TrainTechnique):
    """Page-locked host batches copied with non_blocking=True, overlapping copy and compute."""

    name = "pinned_memory"
    effect = Effect(Stage.TRAIN, Kind.HARDWARE, Exactness.EXACT)
    summary = "pinned host memory and asynchronous host-to-device copies"
    plain_function = "DataLoader(..., pin_memory=True); x.to('cuda', non_blocking=True)"

    def applies_to(self, setup: TrainSetup) -> Applicability:
        if setup.device.type != "cuda":
            return Applicability.no(
                f"pinned memory helps host-to-GPU copies; this run is on {setup.device.type}"
            )
        if setup.loader == "device":
            return Applicability.no("the data already lives on the device (device_data)")
        return Applicability.yes()

    def configure(self, setup: TrainSetup) -> TrainSetup:
        return dataclasses.replace(setup, pin_memory=True)
