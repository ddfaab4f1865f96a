"""What `fit` returns: one record per epoch, plus which techniques were applied.

Every time figure is defined once, in `DEFINITIONS`, which the JSON carries beside the
figures and `jiasu train` prints under its table. They share one clock, so they agree:
``samples_per_s × train_seconds == samples``, and ``time_to_target_s <= train_seconds``,
equal when the target was met at the last step.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

DEFINITIONS: dict[str, str] = {
    "train_seconds": "wall-clock seconds of the training steps, summed over epochs: each "
    "epoch from its first batch to the end of its last step (device synchronised); "
    "excludes validation, target-accuracy checks and torch.compile warm-up",
    "compile_seconds": "wall-clock seconds of torch.compile warm-up before the first step; "
    "not in train_seconds",
    "samples": "training samples the timed steps consumed (an epoch cut short by the "
    "target counts what it ran)",
    "samples_per_s": "samples / train_seconds",
    "time_to_target_s": "train_seconds up to and including the step after which the "
    "held-out target_metric (accuracy unless named) first reached its target value, "
    "target_accuracy (checked several times per epoch): the same "
    "clock as train_seconds, so it excludes evaluation and compilation and is at most "
    "train_seconds; null when the target was not reached",
    "val_seconds": "wall-clock seconds of the validation pass after an epoch; not in train_seconds",
    "metrics": "per epoch: train_loss and what the training steps accumulated (a "
    "classifier's train_accuracy), then val_loss and every metric on the validation data "
    "(val_accuracy and val_top5_accuracy for a classification, val_mse, val_mae and val_r2 "
    "for a regression, then the user's own as val_NAME)",
}


@dataclasses.dataclass(frozen=True)
class EpochRecord:
    """Figures for one epoch, as `DEFINITIONS` says (wall-clock seconds).

    `metrics` holds every figure of the epoch by name (train_loss, train_accuracy,
    val_loss, val_mse, val_<user metric>, ...); the named fields are the classifier's
    figures that reports read (accuracies are None for a regression).
    """

    epoch: int  # 1-based
    train_loss: float
    train_accuracy: float | None
    val_loss: float | None
    val_accuracy: float | None
    lr: float  # learning rate in force during this epoch
    train_seconds: float
    val_seconds: float
    samples_per_s: float  # samples / train_seconds
    samples: int | None = None  # training samples its steps consumed (None: from the rate)
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)  # by name, see above

    @property
    def samples_trained(self) -> int:
        """`samples`, or for a record that lacks it (saved by an older jiasu) the count its
        rate implies."""
        if self.samples is not None:
            return self.samples
        return round(self.samples_per_s * self.train_seconds)

    def metric(self, name: str) -> float | None:
        """The figure `name`: one of `METRICS` or any name in `metrics`; None if absent."""
        value = self.metrics.get(name)
        if value is None and name in METRICS:
            value = getattr(self, name)
        return None if value is None else float(value)


METRICS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")


def epoch_record(
    epoch: int,
    train: dict[str, float],
    val: dict[str, float] | None,
    *,
    lr: float,
    train_seconds: float,
    val_seconds: float,
    samples: int,
) -> EpochRecord:
    """An epoch's record from its training figures (``loss`` and what the steps
    accumulated) and its validation figures (``loss`` and each metric), unprefixed."""
    metrics = {f"train_{k}": v for k, v in train.items()}
    if val is not None:
        metrics.update({f"val_{k}": v for k, v in val.items()})
    return EpochRecord(
        epoch=epoch,
        train_loss=train["loss"],
        train_accuracy=train.get("accuracy"),
        val_loss=val["loss"] if val is not None else None,
        val_accuracy=val.get("accuracy") if val is not None else None,
        lr=lr,
        train_seconds=train_seconds,
        val_seconds=val_seconds,
        samples_per_s=samples / train_seconds,
        samples=samples,
        metrics=metrics,
    )


@dataclasses.dataclass
class History:
    """Per-epoch records of a training run.

    `techniques_applied` lists the recipe's techniques that took effect (with their
    parameters); `techniques_skipped` lists the others with the reason why.
    """

    epochs: list[EpochRecord] = dataclasses.field(default_factory=list)
    techniques_applied: list[str] = dataclasses.field(default_factory=list)
    techniques_skipped: list[dict[str, str]] = dataclasses.field(default_factory=list)
    device: str = "cpu"
    device_reason: str = ""
    stopped_early: bool = False
    compile_seconds: float = 0.0  # torch.compile before the first step; not in train_seconds
    target_accuracy: float | None = None  # the target value of `target_metric`
    target_metric: str = "accuracy"
    time_to_target_s: float | None = None  # see DEFINITIONS; None: not reached
    # (train_seconds so far, test accuracy) at each target check
    accuracy_curve: list[tuple[float, float]] = dataclasses.field(default_factory=list)
    # a streamed Dataset's DataLoader workers: {"num_workers", "reason"} and, when chosen
    # by measuring, "samples_per_s" by worker count and "seconds" (jiasu.train.workers);
    # None for data in memory or the user's DataLoader
    loader: dict[str, Any] | None = None
    # where a data-parallel run trained: {"engine": "local"|"ray"|"spark", "workers": W};
    # None for one process
    engine: dict[str, Any] | None = None

    @property
    def train_seconds(self) -> float:
        return math.fsum(r.train_seconds for r in self.epochs)

    @property
    def samples(self) -> int:
        return sum(r.samples_trained for r in self.epochs)

    @property
    def samples_per_s(self) -> float:
        seconds = self.train_seconds
        return self.samples / seconds if seconds else 0.0

    @property
    def last(self) -> EpochRecord:
        if not self.epochs:
            raise IndexError("no epoch has run")
        return self.epochs[-1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "epochs": [dataclasses.asdict(r) for r in self.epochs],
            "techniques_applied": list(self.techniques_applied),
            "techniques_skipped": [dict(s) for s in self.techniques_skipped],
            "device": self.device,
            "device_reason": self.device_reason,
            "stopped_early": self.stopped_early,
            "compile_seconds": self.compile_seconds,
            "target_accuracy": self.target_accuracy,
            "target_metric": self.target_metric,
            "time_to_target_s": self.time_to_target_s,
            "accuracy_curve": [list(point) for point in self.accuracy_curve],
            "loader": self.loader,
            "engine": self.engine,
            "train_seconds": self.train_seconds,
            "samples": self.samples,
            "samples_per_s": self.samples_per_s,
            "definitions": dict(DEFINITIONS),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        return cls(
            epochs=[EpochRecord(**r) for r in data.get("epochs", [])],
            techniques_applied=list(data.get("techniques_applied", [])),
            techniques_skipped=list(data.get("techniques_skipped", [])),
            device=data.get("device", "cpu"),
            device_reason=data.get("device_reason", ""),
            stopped_early=bool(data.get("stopped_early", False)),
            compile_seconds=float(data.get("compile_seconds", 0.0)),
            target_accuracy=data.get("target_accuracy"),
            target_metric=data.get("target_metric", "accuracy"),
            time_to_target_s=data.get("time_to_target_s"),
            accuracy_curve=[(float(s), float(a)) for s, a in data.get("accuracy_curve", [])],
            loader=data.get("loader"),
            engine=data.get("engine"),
        )
