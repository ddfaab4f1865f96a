"""The training loss a task implies, or the user's own: ``loss(outputs, targets) -> scalar``.

Classification: cross-entropy on logits (N, C) against class ids (N,), with the recipe's
label smoothing. Regression: mean squared error, with targets (N,) and outputs (N, 1)
taken for each other (a view, not a copy). Both compute in float32 whatever precision
the forward pass ran in, as torch's autocast recommends for losses.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from jiasu.core.task import Task

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (outputs, targets) -> scalar


def cross_entropy(
    outputs: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0
) -> torch.Tensor:
    """Mean cross-entropy of logits (N, C) against class ids (N,)."""
    return F.cross_entropy(outputs.float(), targets, label_smoothing=label_smoothing)


def mean_squared_error(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean squared error of outputs against targets of the same number of values per
    sample ((N,) and (N, 1) are the same thing here; no broadcasting to (N, N))."""
    return F.mse_loss(outputs.float(), targets.reshape(outputs.shape).float())


def task_loss(task: Task, label_smoothing: float = 0.0) -> LossFn:
    """The default loss of `task`: cross-entropy (with `label_smoothing`) or MSE."""
    if task.kind == "regression":
        return mean_squared_error
    if label_smoothing:
        return lambda outputs, targets: cross_entropy(outputs, targets, label_smoothing)
    return cross_entropy
