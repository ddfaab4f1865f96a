"""What a training run is made of, and the hooks through which techniques change it.

`TrainSetup` is a frozen description of the run before the loop starts; a technique's
`configure` returns a modified copy (``dataclasses.replace``), optax-style, so the
effect of every technique is visible and composable. During the loop, techniques get
five hook points and nothing else: forward context, after backward, after the
optimizer step, and state (save/restore) — enough for precision, the gradient
pipeline and weight averaging, without an event bus.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any, Literal

import torch
from torch import nn

from jiasu.core.technique import Applicability, Technique

LoaderKind = Literal["dataloader", "device"]


@dataclasses.dataclass(frozen=True)
class TrainSetup:
    """The run as techniques see it before training starts.

    `loader` is "dataloader" (torch's standard per-sample DataLoader, the plain way)
    or "device" (whole dataset as tensors on the device, batches sliced there).
    """

    model: nn.Module
    device: torch.device
    batch_size: int
    lr: float
    optimizer: str
    optimizer_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    loader: LoaderKind = "dataloader"
    num_threads: int | None = None  # None: leave torch's setting alone
    num_train_samples: int = 0


class TrainTechnique(Technique):
    """A technique that acts on training. Every hook defaults to doing nothing."""

    def applies_to(self, setup: TrainSetup) -> Applicability:
        return Applicability.yes()

    def configure(self, setup: TrainSetup) -> TrainSetup:
        """Return the setup with this technique's changes (before the loop starts)."""
        return setup

    def forward_context(self, setup: TrainSetup) -> AbstractContextManager[Any]:
        """Context around forward pass and loss (e.g. autocast)."""
        return contextlib.nullcontext()

    def after_backward(self, model: nn.Module) -> bool:
        """Inspect or transform gradients; return False to skip this optimizer step."""
        return True

    def after_step(self, model: nn.Module) -> None:
        """Called after each optimizer step (e.g. to update a weight average)."""

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors to checkpoint with the run."""
        return {}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """Restore what `state_dict` returned."""
