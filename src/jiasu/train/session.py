"""One training session as `jiasu train` runs it: recipe resolution, fit, test, save, JSON.

Kept out of the CLI so that Python users, the benchmarks and the engines get the same
behaviour as the command line.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from jiasu.core.recipe import Recipe
from jiasu.core.signature import InputSignature
from jiasu.core.task import Task
from jiasu.data import DatasetSplits
from jiasu.data.examples import TrainingData
from jiasu.hardware.device import resolve_device
from jiasu.models.adapter import adapt
from jiasu.train.auto import AutoRecipe, auto_recipe
from jiasu.train.callbacks import Callback, ReduceLROnPlateau
from jiasu.train.data import Samples
from jiasu.train.evaluate import measure
from jiasu.train.fit import fit
from jiasu.train.history import History
from jiasu.train.model_arg import ExternalModel, ModelSpec, save_trained
from jiasu.train.objective import Objective
from jiasu.train.recipes import resolve_recipe
from jiasu.train.settings import TrainSettings

SCHEMA_VERSION = 2  # 2: one training clock, definitions beside the figures (docs/report.md)
SCHEDULE_TECHNIQUES = frozenset({"one_cycle", "lr_warmup"})


@dataclasses.dataclass(frozen=True)
class TrainResult:
    spec: ModelSpec | ExternalModel
    recipe: Recipe
    history: History
    test_accuracy: float | None  # None for a regression (see test_metrics)
    auto: AutoRecipe | None
    data_source: str
    settings: TrainSettings
    # Every metric of the task on the held-out split (e.g. loss, accuracy, top5_accuracy;
    # loss, mse, mae, r2), and which split that was: "test", or "validation" where the
    # data has no test split.
    test_metrics: Mapping[str, float] = dataclasses.field(default_factory=dict)
    evaluated_on: str = "test"
    task: Task | None = None
    signature: InputSignature | None = None  # what the model takes (None: MNIST images)

    def techniques(self) -> dict[str, list[dict[str, str]]]:
        kept = [{"name": name, "why": ""} for name in self.history.techniques_applied]
        dropped = [
            {"name": s["name"], "reason": s["reason"]} for s in self.history.techniques_skipped
        ]
        if self.auto is not None:
            kept = self.auto.kept()
            dropped = self.auto.dropped() + dropped
        return {"kept": kept, "dropped": dropped}

    def to_dict(self) -> dict[str, Any]:
        from jiasu.measure import capture_environment

        history = self.history.to_dict()
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": "train",
            "model": self.spec.to_dict(),
            "recipe": self.recipe.to_dict(),
            "techniques": self.techniques(),
            "probes": [p.to_dict() for p in self.auto.probes] if self.auto else [],
            "settings": dataclasses.asdict(self.settings),
            "epochs_run": len(self.history.epochs),
            "train_seconds": history["train_seconds"],
            "compile_seconds": history["compile_seconds"],
            "time_to_target_s": history["time_to_target_s"],
            "target_accuracy": self.history.target_accuracy,  # the target value of:
            "target_metric": self.history.target_metric,
            "stopped_early": self.history.stopped_early,
            "engine": self.history.engine,  # {"engine", "workers"}; None: one process
            "test_accuracy": self.test_accuracy,
            "test_metrics": dict(self.test_metrics),
            "evaluated_on": self.evaluated_on,
            "task": self.task.to_dict() if self.task else None,
            "samples": history["samples"],
            "samples_per_s": history["samples_per_s"],
            "definitions": history["definitions"],  # what each figure times and excludes
            "history": history["epochs"],
            "accuracy_curve": history["accuracy_curve"],
            "data_source": self.data_source,
            "environment": capture_environment(self.history.device),
        }


def resolve_session_recipe(
    spec: ModelSpec | ExternalModel,
    splits: DatasetSplits | TrainingData,
    recipe_spec: str | Recipe,
    settings: TrainSettings,
    *,
    quiet: bool = False,
    log: Any = None,
) -> tuple[Recipe, AutoRecipe | None]:
    """A Recipe as given, a preset or file by name, or ``auto`` (probed on this machine)."""
    if isinstance(recipe_spec, Recipe):
        return recipe_spec, None
    if recipe_spec != "auto":
        return resolve_recipe(recipe_spec), None
    if log:
        log("probing techniques on this machine (a few training steps each)...")
    data = splits if isinstance(splits, TrainingData) else TrainingData.from_splits(splits)
    signature = data.signature
    # auto probes the model as it will be trained: called through its signature (keyword
    # inputs, the logits of a ModelOutput) with the task's loss and metrics
    called: ModelSpec | ExternalModel = spec  # a registry model takes a tensor, gives logits
    if isinstance(spec, ExternalModel):
        called = ExternalModel(spec.name, builder=lambda: adapt(spec.build(), signature).train())
    auto = auto_recipe(
        called,
        data.train,  # auto brings a schedule: no hold-out
        epochs=settings.epochs,
        batch_size=settings.batch_size,
        lr=settings.lr,
        optimizer=settings.optimizer,
        seed=settings.seed,
        device=resolve_device(settings.device)[0],
        quiet=quiet,
        probe_budget_s=settings.probe_budget_s,
        target=settings.target_accuracy,
        objective=Objective(data.task),
        names=signature.names,
    )
    if log:
        log(auto.budget_line())
    return auto.recipe, auto


@dataclasses.dataclass(frozen=True)
class TrainPlan:
    """What a session trains with, once the recipe is resolved: the settings as the run
    uses them (epochs and checks sized by auto for a target, the validation split), the
    recipe, the callbacks, and the data a target accuracy is checked on."""

    settings: TrainSettings
    recipe: Recipe
    callbacks: tuple[Callback, ...]
    target_data: Samples | None


# Trains the plan where it runs (here by `fit`, or data-parallel on an engine) and
# returns the trained model and its history.
Trainer = Callable[[TrainPlan], tuple[nn.Module, History]]


def train_session(
    spec: ModelSpec | ExternalModel,
    splits: DatasetSplits | TrainingData,
    recipe_spec: str | Recipe,
    settings: TrainSettings,
    *,
    quiet: bool = False,
    save: Path | None = None,
    log: Any = None,
    trainer: Trainer | None = None,
) -> TrainResult:
    """Resolve the recipe (probing for ``auto``), train, test, and optionally save the model.

    `splits` is MNIST's (`DatasetSplits`: the founding document's 20% hold-out is taken
    from the training images) or the user's `TrainingData` (its own validation split,
    made by `read_training_data`). The model is tested on the test split, or on the
    validation split where there is no test split, with every metric of the task.
    `trainer` None trains here with `fit`; the engines pass one that trains the same plan
    data-parallel (`jiasu.app.train`).
    """
    data = splits if isinstance(splits, TrainingData) else TrainingData.from_splits(splits)
    if save is not None and isinstance(spec, ModelSpec):  # fails now, not after the training
        from jiasu.core.outputs import Output, check_outputs
        from jiasu.models.saved import FOLDER

        check_outputs([Output("save", Path(save), FOLDER)])
    recipe, auto = resolve_session_recipe(spec, data, recipe_spec, settings, quiet=quiet, log=log)
    own_schedule = bool(SCHEDULE_TECHNIQUES & set(recipe.names()))
    # the user's data comes with its validation split; MNIST's is cut here, Keras-style
    validation_split = (
        0.0 if data.val is not None else settings.resolved_validation_split(own_schedule)
    )
    callbacks: list[Callback] = []
    if (validation_split > 0 or data.val is not None) and not own_schedule:
        # the founding document's schedule, unless the recipe brings its own
        callbacks.append(ReduceLROnPlateau("val_loss", factor=0.1, patience=3))
    held_out, evaluated_on = (
        (data.test, "test") if data.test is not None else (data.val, "validation")
    )
    epochs, checks = settings.epochs, settings.target_checks_per_epoch
    length = auto.target_length if auto is not None else None
    if length is not None and settings.target_accuracy is not None:
        epochs, checks = length.epochs, length.checks_per_epoch  # auto sizes the run
        if log:
            log(f"auto: up to {epochs} epochs to the target ({length.why})")
    plan = TrainPlan(
        settings=dataclasses.replace(
            settings, epochs=epochs, target_checks_per_epoch=checks,
            validation_split=validation_split,
        ),
        recipe=recipe,
        callbacks=tuple(callbacks),
        target_data=held_out if settings.target_accuracy is not None else None,
    )  # fmt: skip
    model, history = (trainer or _fit_here(spec, data, quiet))(plan)
    test_metrics = (
        measure(adapt(model, data.signature), held_out, Objective(data.task))
        if held_out is not None
        else {}
    )
    test_accuracy = test_metrics.get("accuracy")
    result = TrainResult(
        spec, recipe, history, test_accuracy, auto, data.source, settings,
        test_metrics=test_metrics, evaluated_on=evaluated_on if held_out is not None else "none",
        task=data.task, signature=data.signature,
    )  # fmt: skip
    if save is not None:
        metrics = {
            **{f"{evaluated_on}_{k}": v for k, v in test_metrics.items()},
            "test_accuracy": test_accuracy,
            "train_seconds": history.train_seconds,
            "time_to_target_s": history.time_to_target_s,
            **(history.engine or {}),  # engine and workers of a data-parallel run
        }
        save_trained(
            spec, model, save, recipe=recipe.to_dict(), metrics=metrics,
            signature=data.signature, task=data.task, classes=data.classes,
        )  # fmt: skip
    return result


def _fit_here(spec: ModelSpec | ExternalModel, data: TrainingData, quiet: bool) -> Trainer:
    """The plan trained in this process by `fit`."""

    def train(plan: TrainPlan) -> tuple[nn.Module, History]:
        torch.manual_seed(plan.settings.seed)
        model = spec.build()
        history = fit(
            model, data, settings=plan.settings, callbacks=list(plan.callbacks),
            recipe=plan.recipe, quiet=quiet, model_spec=spec, target_data=plan.target_data,
            task=data.task,  # MNIST's ten digits, whichever a subset holds
        )  # fmt: skip
        return model, history

    return train
