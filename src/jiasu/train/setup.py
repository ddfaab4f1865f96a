"""What a training run is made of, and the hooks through which techniques change it.

`TrainSetup` is a frozen description of the run before the loop starts; a technique's
`configure` returns a modified copy (``dataclasses.replace``), optax-style, so the
effect of every technique is visible in one place and composes. Precision, compilation,
layout, batch size and data placement are all just fields here.

During the loop a technique gets a few hook points and nothing else: `bind` (once, with
the model and optimizer), `scale_loss`, `after_backward` (the gradient pipeline: step,
defer or skip), `step`, `after_step`, `eval_weights` (which weights evaluation sees),
`on_train_end`, and state for checkpoints. Techniques run in recipe order; when one
answers DEFER or SKIP in `after_backward`, the ones after it are not called for that
micro-batch — exactly like a chain of gradient transformations.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import nn

from jiasu.core.task import Task
from jiasu.core.technique import Applicability, Technique

if TYPE_CHECKING:
    from jiasu.train.settings import TrainSettings

LoaderKind = Literal["dataloader", "device"]
# How the training samples are held: tensors in memory (jiasu batches them), a torch
# Dataset (jiasu's DataLoader batches it) or the user's own DataLoader (its batches as given).
DataKind = Literal["tensors", "dataset", "dataloader"]


@dataclasses.dataclass(frozen=True)
class TrainSetup:
    """The run as techniques see it before training starts.

    `loader` is "dataloader" (torch's standard per-sample DataLoader, the plain way)
    or "device" (whole dataset as tensors on the device, batches sliced there; only for
    `data` "tensors"). `task` is what the loss and metrics follow (None: a classifier, as
    before tasks existed); `custom_loss` says the user's loss replaces the task's.
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
    epochs: int = 1
    autocast_dtype: torch.dtype | None = None  # forward pass and loss under autocast
    compile_mode: str | None = None  # torch.compile mode; None: eager
    channels_last: bool = False  # model and inputs in NHWC memory layout
    label_smoothing: float = 0.0
    pin_memory: bool = False  # page-locked host batches, non-blocking copies (CUDA)
    num_workers: int = 0  # DataLoader worker processes decoding a streamed Dataset
    cudnn_benchmark: bool = False
    data: DataKind = "tensors"
    task: Task | None = None
    custom_loss: bool = False

    @classmethod
    def from_settings(
        cls,
        settings: TrainSettings,
        model: nn.Module,
        device: torch.device,
        *,
        num_train_samples: int,
        batch_size: int | None = None,
        data: DataKind = "tensors",
        task: Task | None = None,
        custom_loss: bool = False,
    ) -> TrainSetup:
        """The setup of a run of `settings` (its hyper-parameters are taken from there and
        nowhere else) before any technique configures it. `batch_size` overrides the
        settings' where the data fixes it (a user's DataLoader)."""
        return cls(
            model=model,
            device=device,
            batch_size=batch_size or settings.batch_size,
            lr=settings.lr,
            optimizer=settings.optimizer.lower(),
            num_train_samples=num_train_samples,
            epochs=settings.epochs,
            data=data,
            task=task,
            custom_loss=custom_loss,
        )

    @property
    def is_classification(self) -> bool:
        return self.task is None or self.task.kind == "classification"

    @property
    def steps_per_epoch(self) -> int:
        return -(-self.num_train_samples // self.batch_size)

    def has_conv(self) -> bool:
        return any(isinstance(m, nn.Conv2d | nn.Conv1d | nn.Conv3d) for m in self.model.modules())


class StepAction(enum.Enum):
    """What the gradient pipeline decides after a backward pass."""

    STEP = "step"  # take an optimizer step with the gradients as they are now
    DEFER = "defer"  # keep accumulating; no step yet, gradients kept
    SKIP = "skip"  # drop these gradients; no step


@dataclasses.dataclass
class BoundRun:
    """What `bind` gives a technique once the model and optimizer exist."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    setup: TrainSetup


class StepHooks:
    """The live, stateful side of a technique during one run. Every hook defaults to nothing.

    Techniques themselves are frozen configuration; `TrainTechnique.start` creates one of
    these per run, so recipes stay pure values and state lives only as long as the run.
    """

    def scale_loss(self, loss: torch.Tensor) -> torch.Tensor:
        """Transform the loss before backward (e.g. 1/k for accumulation, fp16 scaling)."""
        return loss

    def after_backward(self, model: nn.Module, last_in_epoch: bool) -> StepAction:
        """Inspect or transform gradients and decide: STEP, DEFER or SKIP."""
        return StepAction.STEP

    def step(self, optimizer: torch.optim.Optimizer) -> bool:
        """Take the optimizer step yourself and return True (e.g. a GradScaler); else False."""
        return False

    def after_step(self, model: nn.Module) -> None:
        """Called after each optimizer step (e.g. to update a weight average or a schedule)."""

    @contextlib.contextmanager
    def eval_weights(self, model: nn.Module) -> Iterator[None]:
        """Context in which evaluation runs (e.g. with averaged weights swapped in)."""
        yield

    def on_train_end(self, model: nn.Module) -> None:
        """Called once after the last epoch (e.g. to leave the averaged weights in the model)."""

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors to checkpoint with the run."""
        return {}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """Restore what `state_dict` returned."""


class TrainTechnique(Technique):
    """A technique that acts on training: configuration, plus optional per-run hooks."""

    def applies_to(self, setup: TrainSetup) -> Applicability:
        return Applicability.yes()

    def configure(self, setup: TrainSetup) -> TrainSetup:
        """Return the setup with this technique's changes (before the loop starts)."""
        return setup

    def start(self, run: BoundRun) -> StepHooks | None:
        """Create this run's hooks once the model and optimizer exist (None: no hooks)."""
        return None
