"""`TrainSettings`: the one set of hyper-parameters a training run is given.

`jiasu.fit` (its keywords build one), `jiasu train`, the sessions and the data-parallel
engines (`jiasu.engines.TrainJob` carries one) all take this type; `TrainSetup` (the
per-run view techniques configure) is derived from it by `TrainSetup.from_settings`.
Every value is checked here, once, so a bad one is one sentence wherever it comes from.
"""

from __future__ import annotations

import dataclasses
import math

from jiasu.core.errors import ConfigError

MAX_SEED = 2**32 - 1


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """The founding document's hyper-parameters, which every recipe starts from.

    `batch_size` and `lr` are per process: W data-parallel workers with batch B train
    like one process with batch W·B. `validation_split` None is the founding document's
    20% hold-out for `jiasu train` (none where the recipe brings its own schedule) and no
    hold-out for `fit`. `target_accuracy` stops the run once the held-out
    `target_metric` (accuracy by default; r2, mse, mae, loss, top5_accuracy or a metric of
    the user's) reaches that value, checked `target_checks_per_epoch` times per epoch:
    at or above it for accuracies and R², at or below it for losses and errors.
    `num_workers` is the DataLoader worker processes decoding a streamed dataset (None:
    measured). `probe_budget_s` is auto's probe budget (None: about 10% of the planned
    training time).
    """

    epochs: int = 5
    batch_size: int = 32
    lr: float = 1e-3
    optimizer: str = "adam"
    validation_split: float | None = None
    seed: int = 0
    device: str = "cpu"
    target_accuracy: float | None = None
    target_checks_per_epoch: int = 4
    target_metric: str = "accuracy"
    probe_budget_s: float | None = None
    num_workers: int | None = None

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "target_checks_per_epoch"):
            check_positive_int(name, getattr(self, name))
        check_seed(self.seed)
        lr = self.lr
        if isinstance(lr, bool) or not isinstance(lr, int | float) or not 0 < lr < math.inf:
            raise ConfigError(f"learning rate must be a positive finite number, got {lr!r}")
        if not isinstance(self.optimizer, str):
            raise ConfigError(f"optimizer must be a name such as 'adam', got {self.optimizer!r}")
        split = self.validation_split
        if split is not None and (
            isinstance(split, bool) or not isinstance(split, int | float) or not 0 <= split < 1
        ):
            raise ConfigError(f"validation_split must be in [0, 1), got {split!r}")
        check_target(self.target_metric, self.target_accuracy)
        from jiasu.train.workers import check_workers

        check_workers(self.num_workers)

    def resolved_validation_split(self, recipe_has_schedule: bool) -> float:
        """`jiasu train`'s hold-out: as given, else 20% unless the recipe has a schedule."""
        if self.validation_split is not None:
            return self.validation_split
        return 0.0 if recipe_has_schedule else 0.2


RATIOS = ("accuracy", "top5_accuracy")  # metrics in [0, 1]


def check_target(metric: object, value: object) -> None:
    """`ConfigError` unless `value` (None: no target) is a value `metric` can reach:
    in (0, 1] for accuracies, at most 1 for R², positive for losses and errors."""
    if not isinstance(metric, str) or not metric:
        raise ConfigError(f"target_metric must be a metric name such as 'r2', got {metric!r}")
    if value is None:
        return
    name = "target_accuracy" if metric == "accuracy" else f"the target {metric}"
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    if metric in RATIOS and not 0 < value <= 1:
        raise ConfigError(f"{name} must be in (0, 1], got {value!r}")
    if metric == "r2" and value > 1:
        raise ConfigError(f"{name} must be at most 1 (a perfect fit), got {value!r}")
    from jiasu.train.metrics import lower_is_better

    if lower_is_better(metric) and value <= 0:
        raise ConfigError(f"{name} must be positive (it is a loss or an error), got {value!r}")


def check_seed(seed: object) -> int:
    """Return `seed` when it is a whole number from 0 to 2**32 - 1 (what torch, numpy and
    every engine accept); else `ConfigError`."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"seed must be a whole number from 0 to 2**32 - 1, got {seed!r:.40}")
    return seed


def check_positive_int(name: str, value: object) -> None:
    """`ConfigError` unless `value` is a whole number >= 1."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
