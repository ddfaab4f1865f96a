"""What training optimises and reports: the task, its loss and its metrics.

`Objective` bundles the `Task` (classification or regression), the loss (the task's
cross-entropy or MSE, or the user's ``loss(outputs, targets)``) and the metrics (the
task's, see `jiasu.train.metrics`, plus the user's). `resolve_objective` builds it for a
model and its data before training starts: the task is the one given, the data's, or
inferred from the targets (integer class ids: classification; floats: regression), and a
model whose output does not fit it (10 scores for 2 classes, (N, 3) outputs for one
target per sample) is one `ConfigError` sentence.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import torch

from jiasu.core.errors import ConfigError
from jiasu.core.task import Task
from jiasu.train.losses import LossFn, task_loss
from jiasu.train.metrics import MetricFn, RunningAccuracy, check_user_metrics, task_metrics

CLASSIFICATION = Task("classification", "accuracy")
REGRESSION = Task("regression", "mse")


@dataclasses.dataclass(frozen=True)
class Objective:
    """The task, the user's loss (None: the task's) and the user's extra metrics."""

    task: Task = CLASSIFICATION
    loss: LossFn | None = None
    user_metrics: Mapping[str, MetricFn] = dataclasses.field(default_factory=dict)

    @property
    def custom_loss(self) -> bool:
        return self.loss is not None

    def train_loss(self, label_smoothing: float = 0.0) -> LossFn:
        """The loss of the training step (the task's with the recipe's label smoothing)."""
        return self.loss or task_loss(self.task, label_smoothing)

    def eval_loss(self) -> LossFn:
        """The loss reported on validation data: the same, without label smoothing."""
        return self.loss or task_loss(self.task)

    def metrics(self) -> dict[str, MetricFn]:
        """The task's metrics, then the user's."""
        return {**task_metrics(self.task), **self.user_metrics}

    def running(self, device: torch.device) -> RunningAccuracy | None:
        """What the training step accumulates besides the loss (a classifier's hits)."""
        return RunningAccuracy(device) if self.task.kind == "classification" else None


def parse_task(task: object) -> Task | None:
    """A `Task`, "classification", "regression" or None (infer it), as a Task or None."""
    if task is None or isinstance(task, Task):
        if isinstance(task, Task) and task.kind == "agreement":
            raise ConfigError("training needs task classification or regression, not agreement")
        return task
    if task == "classification":
        return CLASSIFICATION
    if task == "regression":
        return REGRESSION
    raise ConfigError(f"task {task!r} is unknown; use 'classification' or 'regression'")


def resolve_objective(
    task: Task | None,
    outputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    loss: Any = None,
    metrics: Any = None,
    all_targets: bool = True,
) -> Objective:
    """The objective for a model giving `outputs` (a probe batch) on data with `targets`.

    `task` None is inferred from the targets' dtype. `all_targets` says `targets` are
    the whole training set's (so the classes present are known), not one batch's.
    """
    if loss is not None and not callable(loss):
        raise ConfigError(
            f"loss must be a callable(outputs, targets) -> scalar tensor, got {type(loss).__name__}"
        )
    user_metrics = check_user_metrics(metrics)
    if task is None:
        task = REGRESSION if targets.dtype.is_floating_point else CLASSIFICATION
    if task.kind == "classification":
        task = _check_classifier(task, outputs, targets, all_targets)
    else:
        _check_regression(outputs, targets)
    return Objective(task, loss, user_metrics)


def _check_classifier(
    task: Task, outputs: torch.Tensor, targets: torch.Tensor, all_targets: bool
) -> Task:
    shape = tuple(outputs.shape)
    if targets.dtype.is_floating_point or targets.dim() != 1:
        raise ConfigError(
            f"a classification needs one integer class id per sample, but the targets are "
            f"{str(targets.dtype).removeprefix('torch.')} {tuple(targets.shape)}; pass class "
            "ids (0 to C-1), or task='regression' to fit the numbers"
        )
    if outputs.dim() != 2 or shape[1] < 2:
        raise ConfigError(
            f"the model gives outputs of shape {shape} for a batch of {shape[0]}, but a "
            "classification needs one score per class (N, C) with C >= 2; give the model a "
            "C-way output layer, or pass task='regression'"
        )
    scores = shape[1]
    if task.classes is not None and task.classes != scores:
        raise ConfigError(
            f"the model gives {scores} scores per sample but the data has {task.classes} "
            f"classes; give the model a {task.classes}-way output layer"
        )
    if len(targets):
        low, high = int(targets.min()), int(targets.max())
        if low < 0 or high >= scores:
            bad = low if low < 0 else high
            raise ConfigError(
                f"class id {bad} is not one of the model's {scores} outputs; pass class ids "
                f"0 to {scores - 1}, or give the model {high + 1} outputs"
            )
        if task.classes is None and all_targets and high < 1:
            raise ConfigError(
                f"every target is class {high}; a classification needs samples of at least "
                "2 classes (or pass task='regression' to fit the numbers)"
            )
        if task.classes is None and all_targets and high + 1 < scores:
            raise ConfigError(
                f"the model gives {scores} scores per sample but the targets hold "
                f"{high + 1} classes (0 to {high}); give the model a {high + 1}-way output "
                f"layer, or pass task=Task('classification', classes={scores}) when some "
                "classes are absent from this data"
            )
    return dataclasses.replace(task, classes=scores)


def _check_regression(outputs: torch.Tensor, targets: torch.Tensor) -> None:
    per_output = outputs[0].numel() if outputs.dim() else 0
    per_target = targets[0].numel() if targets.dim() and len(targets) else 0
    target_shape = ("N", *targets.shape[1:])
    output_shape = ("N", *outputs.shape[1:])
    if (
        outputs.dim() == 0
        or per_output != per_target
        or (outputs.dim() > 2 and tuple(outputs.shape[1:]) != tuple(targets.shape[1:]))
    ):
        hint = ""
        whole = bool(len(targets)) and bool((targets == targets.round()).all())
        if outputs.dim() == 2 and per_target == 1 and per_output > 1 and whole:
            hint = " (if the targets are class ids, pass them as integers)"
        raise ConfigError(
            f"the model gives outputs of shape {_shape(output_shape)} but the regression "
            f"targets are {_shape(target_shape)}{hint}; give the model {max(per_target, 1)} "
            "output value(s) per sample, one per target"
        )


def _shape(shape: tuple[Any, ...]) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"
