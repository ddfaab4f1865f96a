"""Memory layout: channels_last (NHWC) for convolutional nets."""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from jiasu.core.technique import Applicability, Effect, Exactness, Kind, Stage, register_technique
from jiasu.train.setup import TrainSetup, TrainTechnique


def to_channels_last(model: nn.Module) -> nn.Module:
    """Plain-function form: convert the model's 4-D weights to NHWC in place."""
    return model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]


@register_technique
@dataclasses.dataclass(frozen=True)
class ChannelsLast(TrainTechnique):
    """Store conv weights and activations as NHWC (channels innermost).

    oneDNN (CPU) and cuDNN (tensor cores) run convolutions natively in NHWC; with the
    default NCHW layout they reorder data around every convolution. Same maths: exact.
    """

    name = "channels_last"
    effect = Effect(Stage.TRAIN, Kind.SOFTWARE, Exactness.EXACT)
    summary = "NHWC memory layout for convolutions"
    plain_function = "jiasu.train.techniques.layout.to_channels_last"

    def applies_to(self, setup: TrainSetup) -> Applicability:
        if not setup.has_conv():
            return Applicability.no("the model has no convolution layers")
        return Applicability.yes()

    def configure(self, setup: TrainSetup) -> TrainSetup:
        return dataclasses.replace(setup, channels_last=True)
