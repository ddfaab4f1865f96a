"""What a model's output is checked against: the task (target kind) and its metric.

A `Task` says how a faster model is verified against eager fp32:

- ``classification`` / ``accuracy``: integer labels (N,), class scores (N, C) with C > 1;
- ``regression`` / ``mse`` or ``mae``: float labels shaped like the outputs, (N,) or (N, k);
- ``agreement`` / ``agreement``: no labels; the candidate's agreement with eager fp32 on
  the same inputs is the metric (top-1 agreement for classifier-shaped outputs (N, C > 1),
  cosine similarity otherwise).

`Task.infer` picks one from the labels and the output shape; a user's ``metric`` string
(accuracy, mse or mae) overrides the guess and is checked against them.

>>> Task.infer(np.array([0, 2, 1]), (3, 10))
Task(kind='classification', metric='accuracy', classes=10)
>>> Task.infer(np.array([0.5, 1.5]), (2, 1)).metric
'mse'
>>> Task.infer(None, (4, 768)).kind
'agreement'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal, cast

import numpy as np

from jiasu.core.errors import ConfigError

TaskKind = Literal["classification", "regression", "agreement"]
Metric = Literal["accuracy", "mse", "mae", "agreement"]
TASK_KINDS: tuple[TaskKind, ...] = ("classification", "regression", "agreement")
USER_METRICS: tuple[Metric, ...] = ("accuracy", "mse", "mae")  # what a user may ask for
_METRICS_OF: dict[str, tuple[Metric, ...]] = {
    "classification": ("accuracy",),
    "regression": ("mse", "mae"),
    "agreement": ("agreement",),
}
METRIC_NAMES: dict[str, str] = {  # for reports and reasons
    "accuracy": "accuracy",
    "mse": "MSE",
    "mae": "MAE",
    "agreement": "agreement with fp32",
}


def classifier_shaped(output_shape: tuple[int, ...]) -> bool:
    """Outputs (N, C) with C > 1: one score per class, so top-1 agreement means something."""
    return len(output_shape) == 2 and output_shape[1] > 1


def parse_metric(text: str) -> Metric:
    """A user's metric name (accuracy, mse or mae; any case) as a `Metric`.

    >>> parse_metric(" MSE ")
    'mse'
    """
    if not isinstance(text, str):
        raise ConfigError(f"metric {text!r} is not a name; use accuracy, mse or mae")
    name = text.strip().lower()
    if name not in USER_METRICS:
        raise ConfigError(
            f"metric {text!r} is unknown; use accuracy (classification), mse or mae (regression)"
        )
    return cast(Metric, name)  # checked just above


@dataclasses.dataclass(frozen=True)
class Task:
    """The target kind and the metric verification reports; `classes` C for classifiers."""

    kind: TaskKind = "classification"
    metric: Metric = "accuracy"
    classes: int | None = None  # C of classifier-shaped outputs (N, C); None when unknown

    def __post_init__(self) -> None:
        if self.kind not in TASK_KINDS:
            raise ConfigError(
                f"task kind {self.kind!r} is unknown; use classification, regression or agreement"
            )
        if self.metric not in _METRICS_OF[self.kind]:
            allowed = " or ".join(_METRICS_OF[self.kind])
            raise ConfigError(
                f"a {self.kind} task cannot use metric {self.metric!r}; use {allowed}"
            )
        classes = self.classes
        if classes is not None and (
            isinstance(classes, bool) or not isinstance(classes, int) or classes < 2
        ):
            raise ConfigError(f"task classes {classes!r} is invalid; use a whole number >= 2")

    @property
    def higher_is_better(self) -> bool:
        """True for accuracy and agreement, False for the errors (mse, mae)."""
        return self.metric in ("accuracy", "agreement")

    @property
    def has_labels(self) -> bool:
        """Whether this task's metric is measured against labels (not only against fp32)."""
        return self.kind != "agreement"

    @property
    def metric_name(self) -> str:
        """The metric in words: "accuracy", "MSE", "MAE", "agreement with fp32"."""
        return METRIC_NAMES[self.metric]

    def describe(self) -> str:
        """E.g. "classification, accuracy on the labels (10 classes)"."""
        if self.kind == "agreement":
            return "no labels: agreement with eager fp32 on the same inputs"
        classes = f" ({self.classes} classes)" if self.classes else ""
        return f"{self.kind}, {self.metric_name} on the labels{classes}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "metric": self.metric,
            "classes": self.classes,
            "higher_is_better": self.higher_is_better,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Task:
        """The inverse of `to_dict` (derived keys are ignored); bad values are ConfigErrors."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"a task must be a mapping with kind and metric, not {data!r:.60}")
        return cls(
            kind=data.get("kind", "classification"),
            metric=data.get("metric", "accuracy"),
            classes=data.get("classes"),
        )

    @classmethod
    def infer(
        cls,
        labels: np.ndarray | None,
        output_shape: tuple[int, ...],
        metric: str | None = None,
    ) -> Task:
        """The task for these labels and outputs (N, ...); `metric` (accuracy, mse or mae)
        overrides the guess. Labels that cannot be checked that way are a ConfigError.

        Whole-number labels (N,) with classifier-shaped outputs (N, C > 1) mean
        classification; float labels shaped like the outputs mean regression (MSE); no
        labels mean agreement with fp32.
        """
        shape = tuple(int(d) for d in output_shape)
        if not shape:
            raise ConfigError("the model's output is a scalar; it needs a batch axis first")
        chosen = parse_metric(metric) if metric is not None else None
        if labels is None:
            if chosen is not None:
                raise ConfigError(
                    f"metric {chosen} needs labels; pass labels, or leave the metric unset "
                    "to verify by agreement with eager fp32"
                )
            classes = shape[1] if classifier_shaped(shape) else None
            return cls("agreement", "agreement", classes)
        labels = np.asarray(labels)
        whole = _whole_numbers(labels)
        if chosen is None:
            if classifier_shaped(shape) and labels.ndim == 1 and whole:
                chosen = "accuracy"
            elif whole and labels.dtype.kind in "iub":
                raise ConfigError(
                    f"the labels are whole numbers {labels.shape} but the model gives outputs "
                    f"{shape}, not one score per class; pass metric mse or mae to compare "
                    "them as numbers"
                )
            else:
                chosen = "mse"
        task = (
            cls("classification", "accuracy", shape[1] if classifier_shaped(shape) else None)
            if chosen == "accuracy"
            else cls("regression", chosen)
        )
        task.check_labels(labels, shape)
        return task

    def check_labels(self, labels: np.ndarray | None, output_shape: tuple[int, ...]) -> np.ndarray:
        """`labels` as this task compares them with outputs of `output_shape` (N, ...):
        int64 class indices (N,) for accuracy, float64 shaped like the outputs for mse/mae.
        A mismatch is a ConfigError naming what was expected and what was given."""
        shape = tuple(int(d) for d in output_shape)
        if not self.has_labels:
            if labels is not None:
                raise ConfigError("an agreement task takes no labels; pass metric mse, mae or "
                                  "accuracy to use them")  # fmt: skip
            return np.empty((0,))
        if labels is None:
            raise ConfigError(f"a {self.kind} task needs labels; pass one label per sample")
        labels = np.asarray(labels)
        n = shape[0]
        if labels.ndim == 0 or labels.shape[0] != n:
            raise ConfigError(
                f"labels have shape {labels.shape} but there are {n} samples; pass one label "
                "per sample"
            )
        if self.metric == "accuracy":
            return _class_indices(labels, shape)
        return _targets(labels, shape)


def _whole_numbers(labels: np.ndarray) -> bool:
    """Integer or boolean labels, or floats that are all finite whole numbers."""
    if labels.dtype.kind in "iub":
        return True
    if labels.dtype.kind != "f" or labels.size == 0:
        return False
    return bool(np.isfinite(labels).all() and (labels == np.round(labels)).all())


def _class_indices(labels: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if not classifier_shaped(shape):
        raise ConfigError(
            f"metric accuracy needs class scores (N, C) with C > 1, but the model gives {shape}; "
            "use metric mse or mae for other outputs"
        )
    if labels.ndim != 1 or not _whole_numbers(labels):
        raise ConfigError(
            f"metric accuracy needs one whole-number class per sample, shape ({shape[0]},), "
            f"but the labels are {labels.dtype} {labels.shape}; pass class indices"
        )
    classes = shape[1]
    indices = labels.astype(np.int64)
    bad = np.flatnonzero((indices < 0) | (indices >= classes))
    if bad.size:
        raise ConfigError(
            f"label {int(indices[bad[0]])} at index {int(bad[0])} is not a class of the "
            f"model's {classes} outputs; pass class indices 0 to {classes - 1}"
        )
    return indices


def _targets(labels: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Float targets shaped like the outputs; (N,) and (N, 1) are taken for each other."""
    if labels.dtype.kind not in "iufb":
        raise ConfigError(f"labels of dtype {labels.dtype} are not numbers; pass numeric targets")
    targets = labels.astype(np.float64)
    if targets.shape != shape:
        if targets.size == int(np.prod(shape)) and (
            (targets.ndim == 1 and shape[1:] == (1,))
            or (shape == (shape[0],) and targets.ndim == 2)
        ):
            targets = targets.reshape(shape)
        else:
            raise ConfigError(
                f"labels have shape {labels.shape} but the model's outputs are {shape}; pass "
                "targets shaped like the outputs"
            )
    bad = np.flatnonzero(~np.isfinite(targets).reshape(shape[0], -1).all(axis=1))
    if bad.size:
        raise ConfigError(
            f"the label of sample {int(bad[0])} is NaN or infinite ({bad.size} such samples); "
            "drop or fix them"
        )
    return targets
