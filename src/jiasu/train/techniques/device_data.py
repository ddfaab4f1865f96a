"""Keep the dataset on the device and slice shuffled batches there."""

from __future__ import annotations

import dataclasses

from jiasu.core.technique import Applicability, Effect, Exactness, Kind, Stage, register_technique
from jiasu.train.setup import TrainSetup, TrainTechnique


@register_technique
@dataclasses.dataclass(frozen=True)
class DeviceData(TrainTechnique):
    """Whole dataset as two tensors on the device; shuffling by an on-device permutation.

    Replaces torch's DataLoader, which indexes one sample at a time in Python and
    collates each batch (per batch: B ``__getitem__`` calls and a ``torch.stack``).
    For in-memory datasets such as MNIST (60,000 × 784 floats = 188 MB) that Python
    work dominates a small model's step. Same batches in distribution; exact maths.
    """

    name = "device_data"
    effect = Effect(Stage.TRAIN, Kind.HARDWARE, Exactness.EXACT)
    summary = "dataset kept as tensors on the device, batches sliced there (no DataLoader)"
    plain_function = "jiasu.train.loaders.DeviceBatches"

    def applies_to(self, setup: TrainSetup) -> Applicability:
        if setup.data != "tensors":
            source = "DataLoader" if setup.data == "dataloader" else "Dataset"
            return Applicability.no(f"the samples stream from a {source}, not tensors in memory")
        return Applicability.yes()

    def configure(self, setup: TrainSetup) -> TrainSetup:
        return dataclasses.replace(setup, loader="device")
