"""Named recipes (presets are compositions of techniques with no logic of their own), and
the schedule rules of `--recipe auto`, with the runs they were tuned on."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path

from torch import nn
from torch.utils.data import DataLoader

from jiasu.core.recipe import Recipe
from jiasu.core.registry import Registry
from jiasu.core.signature import InputSignature
from jiasu.core.task import Task
from jiasu.data.examples import Examples
from jiasu.train.data import Samples
from jiasu.train.setup import TrainTechnique
from jiasu.train.techniques import (
    DeviceData,
    FusedOptimizer,
    LabelSmoothing,
    LargeBatch,
    OneCycle,
    Threads,
)

RECIPES: Registry[Callable[[], Recipe]] = Registry("recipe")


@RECIPES.register("baseline")
def baseline() -> Recipe:
    """Plain PyTorch as most tutorials write it: DataLoader, eager fp32, default optimizer."""
    return Recipe("baseline", ())


@RECIPES.register("fast")
def fast() -> Recipe:
    """The exact and numeric techniques that paid on every CPU measured so far."""
    return Recipe("fast", (Threads(), DeviceData(), FusedOptimizer()))


def resolve_recipe(spec: str) -> Recipe:
    """A preset name (`baseline`, `fast`) or a path to a .toml / .json recipe file."""
    if spec in RECIPES:
        return RECIPES.get(spec)()
    if spec.endswith((".toml", ".json")) or Path(spec).exists():
        return Recipe.load(spec)
    return RECIPES.get(spec)()  # raises: unknown recipe, with the known names


# --- `--recipe auto`'s schedules -------------------------------------------------------
# The approximate part of an auto recipe (batch size with lr scaling, one-cycle, label
# smoothing) changes what is optimised, so it is only as good as the runs it was tuned on:
# jiasu's cnn and mlp classifying MNIST (benchmarks/train_mnist.py on the 2-core CPU, see
# benchmarks/RESULTS.md). auto applies it to runs of that kind only; any other run keeps
# the user's batch size, learning rate and schedule, and auto adds exact and numeric
# techniques alone.
MNIST_SAMPLE_SHAPE = (1, 28, 28)
MNIST_CLASSES = 10
TUNED_ON = "tuned on MNIST (benchmarks/train_mnist.py)"


@dataclasses.dataclass(frozen=True)
class ScheduleRule:
    """An approximate part of a recipe, as found by the time-to-accuracy benchmark."""

    batch_size: int
    lr_scaling: str
    one_cycle_factor: float | None
    label_smoothing: float | None
    why: str
    tuned_epochs: int  # the schedule length it was measured at (one-cycle over these)


# Found by benchmarks/train_mnist.py on the 2-core CPU (see benchmarks/RESULTS.md).
SCHEDULES: dict[str, ScheduleRule] = {
    "conv": ScheduleRule(
        batch_size=128,
        lr_scaling="sqrt",
        one_cycle_factor=8.0,
        label_smoothing=0.1,
        why=f"batch 128, one-cycle to 8× lr and label smoothing 0.1, {TUNED_ON}: "
        "99% MNIST in one epoch",
        tuned_epochs=1,
    ),
    "dense": ScheduleRule(
        batch_size=256,
        lr_scaling="sqrt",
        one_cycle_factor=4.0,
        label_smoothing=None,
        why=f"batch 256 + one-cycle, {TUNED_ON}: most samples/s at equal accuracy",
        tuned_epochs=5,
    ),
}


def unlike_mnist(samples: Samples, task: Task, *, custom_loss: bool = False) -> str | None:
    """How this run differs from the MNIST runs the schedules were tuned on, or None.

    The schedules apply to a classification into 10 classes of single-channel 28×28
    float images, held in memory or streamed by jiasu (so the batch size may change), on
    the task's own loss. Anything else is described in a few words, e.g. "a regression".
    """
    if task.kind != "classification":
        return f"a {task.kind}"
    if custom_loss:
        return "trained on your own loss"
    if isinstance(samples, DataLoader):
        return "streamed from your DataLoader, whose batches are yours"
    signature = getattr(samples, "signature", None)
    if not isinstance(signature, InputSignature):
        return "a torch Dataset whose inputs auto cannot see"
    specs = signature.inputs
    if (
        len(specs) != 1
        or specs[0].dtype != "float32"
        or specs[0].sample_shape != MNIST_SAMPLE_SHAPE
    ):
        return f"inputs {signature.describe()}, not 1×28×28 images"
    classes = task.classes
    if classes is None and isinstance(samples, Examples) and len(samples):
        classes = int(samples.targets.max()) + 1
    if classes is not None and classes > MNIST_CLASSES:
        return f"{classes} classes, not MNIST's {MNIST_CLASSES}"
    return None


def schedule_for(
    model: nn.Module, n_samples: int, *, unlike: str | None = None
) -> tuple[list[TrainTechnique], str]:
    """The approximate techniques for this kind of model, scaled to the dataset size, and
    why; none, and why not, when the run is `unlike` MNIST (see `unlike_mnist`)."""
    rule = schedule_rule(model)
    if unlike is not None:
        return [], (
            "no schedule: auto's schedules (larger batches with lr scaling, one-cycle, label "
            f"smoothing) were {TUNED_ON}, and this run is {unlike}; auto keeps your batch "
            "size, learning rate and schedule and adds exact and numeric techniques only"
        )
    # keep at least ~100 optimizer steps per epoch on small datasets
    batch = max(32, min(rule.batch_size, 2 ** int(math.log2(max(1, n_samples // 100)))))
    techniques: list[TrainTechnique] = []
    if batch > 32:
        techniques.append(LargeBatch(batch_size=batch, lr_scaling=rule.lr_scaling))  # type: ignore[arg-type]
    if rule.one_cycle_factor is not None:
        techniques.append(OneCycle(max_lr_factor=rule.one_cycle_factor))
    if rule.label_smoothing is not None:
        techniques.append(LabelSmoothing(epsilon=rule.label_smoothing))
    return techniques, rule.why


def schedule_rule(model: nn.Module) -> ScheduleRule:
    """The MNIST schedule for this kind of model: "conv" with a convolution, else "dense"."""
    has_conv = any(isinstance(m, nn.Conv2d) for m in model.modules())
    return SCHEDULES["conv" if has_conv else "dense"]


# With a target metric auto chooses the run's length: train until the target is reached
# on the held-out data, checked TARGET_CHECKS_PER_EPOCH times per epoch, for at most
# this many epochs (a cap, not a plan: the run stops at the target).
TARGET_EPOCH_CAP = 20
TARGET_CHECKS_PER_EPOCH = 4


@dataclasses.dataclass(frozen=True)
class TargetLength:
    """How long a run with a target trains at most, and how often it checks."""

    epochs: int  # the cap; a one-cycle schedule is sized from it
    checks_per_epoch: int
    why: str


def length_for_target(model: nn.Module, *, scheduled: bool) -> TargetLength:
    """The epoch cap of a run that trains until its target metric is reached.

    With MNIST's schedule (`scheduled`), whose one-cycle is sized from the run's length:
    twice the epochs it was tuned at (the cnn's reached 99% in one epoch, so 2), as a
    longer one-cycle reaches the target later (its learning rate peaks later). Without
    one: `TARGET_EPOCH_CAP` epochs. Either way the target is checked
    `TARGET_CHECKS_PER_EPOCH` times per epoch and the run stops when it is reached.
    """
    checks = TARGET_CHECKS_PER_EPOCH
    if scheduled:
        rule = schedule_rule(model)
        epochs = 2 * rule.tuned_epochs
        why = (
            f"until the target, checked {checks}× per epoch, at most {epochs} epochs: twice "
            f"the {rule.tuned_epochs} the schedule was {TUNED_ON} at (one-cycle sized to {epochs})"
        )
        return TargetLength(epochs, checks, why)
    why = (
        f"until the target, checked {checks}× per epoch, at most {TARGET_EPOCH_CAP} epochs "
        "(no schedule depends on the length)"
    )
    return TargetLength(TARGET_EPOCH_CAP, checks, why)
