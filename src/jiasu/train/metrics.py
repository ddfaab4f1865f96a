"""Metrics of a trained model: the task's own, and the user's.

Each metric is ``metric(outputs, targets) -> number`` over a whole dataset's outputs
(N, ...) at once, so metrics that do not average over batches (R², a user's F1) come
out right. The task's metrics return 0-d tensors on the device and are read back
together (one synchronisation); a user's may return a float or a 0-d tensor.

- classification: ``accuracy`` (top-1), and ``top5_accuracy`` where there are more than
  5 classes;
- regression: ``mse``, ``mae`` and ``r2`` (1 − SSE/SST; 0 for a model that predicts the
  mean, negative when worse).

During a training epoch only what costs nothing extra is kept, on the device: the
number of correct top-1 predictions of a classifier (`RunningAccuracy`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch

from jiasu.core.errors import ConfigError
from jiasu.core.task import Task

MetricFn = Callable[[torch.Tensor, torch.Tensor], "torch.Tensor | float"]
TOP_K = 5
# Lower is better for these metrics (and any name ending in "loss"); higher for the rest.
LOWER_IS_BETTER = frozenset({"loss", "mse", "mae", "rmse", "error"})


def accuracy(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Fraction of samples whose highest score is their class."""
    return _fraction((outputs.argmax(dim=1) == targets).sum(), targets.shape[0])


def top5_accuracy(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Fraction of samples whose class is among their 5 highest scores."""
    top = outputs.topk(TOP_K, dim=1).indices  # (N, 5)
    return _fraction((top == targets[:, None]).any(dim=1).sum(), targets.shape[0])


def _fraction(count: torch.Tensor, n: int) -> torch.Tensor:
    """count / n, exact as a Python float would be (float64 where the device has it)."""
    dtype = torch.float32 if count.device.type == "mps" else torch.float64
    return count.to(dtype) / n


def mse(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean squared error over every output value."""
    return (outputs.float() - targets.reshape(outputs.shape)).square().mean()


def mae(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over every output value."""
    return (outputs.float() - targets.reshape(outputs.shape)).abs().mean()


def r2(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Coefficient of determination 1 − SSE/SST, over every output value (SST about the
    targets' mean per output column)."""
    y = targets.reshape(outputs.shape).float()
    sse = (outputs.float() - y).square().sum()
    sst = (y - y.mean(dim=0)).square().sum()
    return 1.0 - sse / sst.clamp_min(torch.finfo(torch.float32).tiny)


def task_metrics(task: Task) -> dict[str, MetricFn]:
    """The metrics reported for `task` (see the module docstring)."""
    if task.kind == "regression":
        return {"mse": mse, "mae": mae, "r2": r2}
    if task.classes is not None and task.classes > TOP_K:
        return {"accuracy": accuracy, "top5_accuracy": top5_accuracy}
    return {"accuracy": accuracy}


def check_user_metrics(metrics: object) -> dict[str, MetricFn]:
    """The user's ``{"name": callable(outputs, targets)}``, checked: names that are
    identifiers and do not shadow the loss, values that are callable."""
    if metrics is None:
        return {}
    if not isinstance(metrics, Mapping):
        raise ConfigError(
            f"metrics must be a dict of name to callable(outputs, targets), got "
            f"{type(metrics).__name__}"
        )
    checked: dict[str, MetricFn] = {}
    for name, fn in metrics.items():
        if not isinstance(name, str) or not name.isidentifier() or name == "loss":
            raise ConfigError(
                f"metric name {name!r} is invalid; use a word such as 'f1' (not 'loss')"
            )
        if not callable(fn):
            raise ConfigError(
                f"metric {name!r} is a {type(fn).__name__}, not a callable(outputs, targets)"
            )
        checked[name] = fn
    return checked


def lower_is_better(name: str) -> bool:
    """Whether a smaller value of metric `name` (with or without its train_/val_ prefix)
    is better: losses and errors, not accuracies or R²."""
    base = name.removeprefix("train_").removeprefix("val_")
    return base in LOWER_IS_BETTER or base.endswith("loss")


def compute(
    metrics: Mapping[str, MetricFn], outputs: torch.Tensor, targets: torch.Tensor
) -> dict[str, float]:
    """Every metric on the same outputs and targets, read back in one synchronisation."""
    values: dict[str, torch.Tensor | float] = {}
    for name, fn in metrics.items():
        try:
            value = fn(outputs, targets)
        except Exception as exc:  # a user's metric that cannot take these outputs
            raise ConfigError(
                f"metric {name!r} failed on outputs {tuple(outputs.shape)} and targets "
                f"{tuple(targets.shape)}: {type(exc).__name__}: {exc}"
            ) from exc
        values[name] = value.detach() if isinstance(value, torch.Tensor) else value
    tensors = {k: v for k, v in values.items() if isinstance(v, torch.Tensor)}
    for name, tensor in tensors.items():
        if tensor.numel() != 1:
            raise ConfigError(
                f"metric {name!r} returned a tensor of shape {tuple(tensor.shape)}; "
                "return one number"
            )
    if tensors:
        stacked = torch.stack([t.reshape(()).double() for t in tensors.values()]).tolist()
        values.update(zip(tensors, stacked, strict=True))
    return {name: float(value) for name, value in values.items()}


class RunningAccuracy:
    """Correct top-1 predictions of a classifier, summed on the device over an epoch."""

    def __init__(self, device: torch.device) -> None:
        self.correct = torch.zeros((), device=device, dtype=torch.long)

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        self.correct += (outputs.detach().argmax(dim=1) == targets).sum()

    def result(self, seen: int) -> dict[str, float]:
        return {"accuracy": self.correct.item() / seen}
