"""What `fit` returns: one record per epoch, plus which techniques were applied."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class EpochRecord:
    """Figures for one epoch. Times are wall-clock seconds; training time excludes validation."""

    epoch: int  # 1-based
    train_loss: float
    train_accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    lr: float  # learning rate in force during this epoch
    train_seconds: float
    val_seconds: float
    samples_per_s: float  # training samples / train_seconds

    def metric(self, name: str) -> float | None:
        value = getattr(self, name)
        return None if value is None else float(value)


METRICS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")


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
    target_accuracy: float | None = None
    time_to_target_s: float | None = None  # training time incl. compilation; None: not reached
    # (training seconds incl. compilation, test accuracy) at each target check
    accuracy_curve: list[tuple[float, float]] = dataclasses.field(default_factory=list)

    @property
    def train_seconds(self) -> float:
        return sum(r.train_seconds for r in self.epochs)

    @property
    def samples_per_s(self) -> float:
        seconds = self.train_seconds
        return (
            sum(r.samples_per_s * r.train_seconds for r in self.epochs) / seconds
            if seconds
            else 0.0
        )

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
            "time_to_target_s": self.time_to_target_s,
            "accuracy_curve": [list(point) for point in self.accuracy_curve],
            "train_seconds": self.train_seconds,
            "samples_per_s": self.samples_per_s,
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
            time_to_target_s=data.get("time_to_target_s"),
            accuracy_curve=[(float(s), float(a)) for s, a in data.get("accuracy_curve", [])],
        )
