"""`fit`: a lean training loop whose speed-ups come from a `Recipe` of techniques."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

from jiasu.core.errors import ConfigError
from jiasu.core.recipe import Recipe
from jiasu.core.task import Task
from jiasu.data import ImageDataset
from jiasu.data.examples import Examples
from jiasu.hardware.device import resolve_device
from jiasu.hardware.threads import set_threads
from jiasu.models.adapter import unwrap
from jiasu.train import resume
from jiasu.train.callbacks import Callback, RunState
from jiasu.train.calling import CalledModel, call_model
from jiasu.train.data import Data, Samples, as_samples, samples_count, split_validation
from jiasu.train.finite import check_epoch_finite
from jiasu.train.history import EpochRecord, History, epoch_record
from jiasu.train.loaders import (
    Batch,
    DeviceBatches,
    StreamedBatches,
    dataloader_batches,
    dataset_batches,
)
from jiasu.train.loop import LiveRun, TargetCheck, compile_warmup, finish, run_epoch
from jiasu.train.losses import LossFn
from jiasu.train.metrics import MetricFn, lower_is_better
from jiasu.train.model_arg import ExternalModel, ModelSpec
from jiasu.train.objective import CLASSIFICATION, Objective, parse_task, resolve_objective
from jiasu.train.optimizers import create_optimizer
from jiasu.train.settings import TrainSettings
from jiasu.train.setup import BoundRun, DataKind, TrainSetup, TrainTechnique
from jiasu.train.strategy import SingleProcess, Strategy
from jiasu.train.workers import loader_workers
from jiasu.ui.progress import TaskProgress, progress_enabled


def fit(
    model: nn.Module,
    data: Data,
    *,
    epochs: int = 5,
    batch_size: int = 32,
    optimizer: str = "adam",
    lr: float = 1e-3,
    validation_split: float = 0.0,
    validation_data: Data | None = None,
    callbacks: Sequence[Callback] = (),
    recipe: Recipe | str | None = None,
    loss: LossFn | None = None,
    metrics: Mapping[str, MetricFn] | None = None,
    task: Task | str | None = None,
    seed: int = 0,
    device: str = "cpu",
    quiet: bool = False,
    resume_from: str | Path | None = None,
    model_spec: ModelSpec | ExternalModel | None = None,
    target_accuracy: float | None = None,
    target_data: Data | None = None,
    target_checks_per_epoch: int = 1,
    target_metric: str = "accuracy",
    num_workers: int | None = None,
    settings: TrainSettings | None = None,
    strategy: Strategy | None = None,
) -> History:
    """Train `model` on `data` for its task; return the per-epoch `History`.

    `data` is ``(inputs, targets)`` as tensors or arrays (inputs one array, a tuple in
    the model's order, or a dict by name for a model taking keywords, such as a
    ``transformers`` classifier), jiasu's `Examples` or `TrainingData`, an `ImageDataset`,
    a torch `Dataset` yielding ``(inputs, target)``, or a `DataLoader` (streamed as it
    batches). The model is called ``model(*inputs)`` (by name for dict inputs); a model
    returning a tuple, dict or ``ModelOutput`` is trained on its ``logits``.

    `task` ("classification", "regression" or a `Task`) is inferred when not given:
    integer targets are class ids (cross-entropy; accuracy, and top-5 accuracy with more
    than 5 classes), float targets are values (MSE; MSE, MAE and R²). `loss` (a
    ``callable(outputs, targets) -> scalar tensor``) replaces the task's loss; `metrics`
    (``{"name": callable(outputs, targets) -> float}``) are reported beside the task's
    on the validation data, as ``val_name`` in each epoch's `EpochRecord.metrics`. A
    model whose output does not fit the task is a `ConfigError` before training starts.

    With no recipe this is plain PyTorch: torch's DataLoader, eager fp32, the chosen
    optimizer. `recipe` (a `Recipe`, a preset name such as "fast", a recipe file, or
    "auto": probed on this machine) changes how the same maths is run (exact and numeric
    techniques) or what is run (approximate ones). Each technique that does not apply
    is skipped, and `History.techniques_skipped` says why.

    `validation_split` takes the *last* fraction of `data` as validation, as Keras does.
    With `target_accuracy`, training stops once `target_metric` (default accuracy; for a
    regression e.g. "r2" or "mse", which stop at or below their value) on `target_data`
    reaches it, checked `target_checks_per_epoch` times per epoch with the checking time
    excluded. A seeded run is reproducible on the same machine;
    `resume_from` continues from a `ModelCheckpoint` folder exactly as if the run had not
    stopped.

    A `Dataset` (such as a streamed image folder) is decoded by `num_workers` DataLoader
    worker processes (0: in the training process); None times a few batches at 0, 1, 2,
    … workers up to the usable CPUs (about 3 s, before training) and keeps the fastest,
    reported in `History.loader`. The workers end when `fit` returns or fails. Data in
    memory needs no workers; a `DataLoader` keeps its own.

    The hyper-parameters (epochs, batch_size, optimizer, lr, validation_split, seed,
    device, target_accuracy, target_checks_per_epoch, target_metric, num_workers) may be
    given as one `TrainSettings` instead (`settings=`; its validation_split None is 0
    here), not both.
    `strategy` is how many processes train (`jiasu.train.strategy`; the engines pass a
    data-parallel one): None is this process alone.

    >>> from jiasu.models import create_model
    >>> history = fit(create_model("mlp"), (x, y), epochs=1)  # doctest: +SKIP
    """
    keywords = {
        "epochs": epochs, "batch_size": batch_size, "optimizer": optimizer, "lr": lr,
        "validation_split": validation_split, "seed": seed, "device": device,
        "target_accuracy": target_accuracy, "target_checks_per_epoch": target_checks_per_epoch,
        "target_metric": target_metric, "num_workers": num_workers,
    }  # fmt: skip
    settings = fit_settings(settings, keywords)
    strategy = strategy or SingleProcess()
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model must be a torch nn.Module, got {type(model).__name__}")
    seed = settings.seed
    train, val, given = split_validation(data, settings.validation_split or 0.0, validation_data)
    wanted = parse_task(task)
    if wanted is None and given is not None:
        wanted = given.task
    called = call_model(model, train)
    objective = resolve_objective(
        wanted, called.outputs, called.targets, loss=loss, metrics=metrics,
        # an ImageDataset does not record its class count: a subset may lack some classes
        all_targets=isinstance(train, Examples) and not isinstance(data, ImageDataset),
    )  # fmt: skip
    train = _as_task_targets(objective, train)
    val = _as_task_targets(objective, val) if val is not None else None
    target = _target(settings, target_data, objective)
    if strategy.world_size > 1 and isinstance(recipe, str) and recipe == "auto":
        raise ConfigError(
            "recipe 'auto' probes one process; resolve it before a data-parallel run "
            "(jiasu train --engine does) and pass the Recipe it chose"
        )
    train = strategy.shard(train, seed)  # this process's samples
    dev, device_reason = resolve_device(settings.device)
    setup = TrainSetup.from_settings(
        settings, called.module, dev, num_train_samples=samples_count(train),
        batch_size=_loader_batch_size(train), data=data_kind(train), task=objective.task,
        custom_loss=objective.custom_loss,
    )  # fmt: skip
    history = History(device=str(dev), device_reason=strategy.describe(device_reason))
    resolved = _resolve_fit_recipe(recipe, model, called, train, objective, setup, seed,
                                   quiet, history)  # fmt: skip
    torch.manual_seed(seed)
    setup, active = apply_techniques(setup, _training_techniques(resolved), history)
    setup = strategy.configure(setup)
    history.device = str(setup.device)
    if target is not None:
        history.target_accuracy = target.accuracy
        history.target_metric = target.metric

    with process_settings(setup):  # the workers are measured under the run's threads
        workers, history.loader = loader_workers(train, setup.batch_size, settings.epochs,
                                                 settings.num_workers, seed)  # fmt: skip
        setup = dataclasses.replace(setup, num_workers=workers)
        live, shuffle_generator = build_live_run(
            setup, active, train, seed, objective=objective, names=called.names
        )
        batches = live.batches
        live = strategy.wrap(dataclasses.replace(live, strategy=strategy))
        try:
            _loop(live, train, val, history, target, settings.epochs, callbacks, quiet,
                  shuffle_generator, resume_from, resolved, model_spec)  # fmt: skip
        finally:
            close_batches(batches)  # its worker processes end with the run
    return history


FIT_DEFAULTS: dict[str, object] = {
    "epochs": 5, "batch_size": 32, "optimizer": "adam", "lr": 1e-3, "validation_split": 0.0,
    "seed": 0, "device": "cpu", "target_accuracy": None, "target_checks_per_epoch": 1,
    "target_metric": "accuracy", "num_workers": None,
}  # fmt: skip


def fit_settings(settings: TrainSettings | None, keywords: Mapping[str, object]) -> TrainSettings:
    """`settings`, or the `TrainSettings` that `fit`'s hyper-parameter keywords make; a
    keyword changed from its default beside `settings` is a `ConfigError`."""
    if settings is None:
        return TrainSettings(**keywords)  # type: ignore[arg-type]
    if not isinstance(settings, TrainSettings):
        raise ConfigError(f"settings must be a TrainSettings, got {type(settings).__name__}")
    changed = [name for name, value in keywords.items() if value != FIT_DEFAULTS[name]]
    if changed:
        raise ConfigError(
            f"{', '.join(changed)} given beside settings; put every hyper-parameter in the "
            "TrainSettings or give them all as keywords"
        )
    return settings


def close_batches(batches: Iterable[Batch]) -> None:
    """End the worker processes of batches jiasu streams (other batches have none)."""
    if isinstance(batches, StreamedBatches):
        batches.close()


def build_live_run(
    setup: TrainSetup,
    active: Sequence[TrainTechnique],
    train: Samples,
    seed: int,
    *,
    objective: Objective | None = None,
    names: tuple[str, ...] | None = None,
) -> tuple[LiveRun, torch.Generator]:
    """Model on its device (in its layout), optimizer, technique hooks, compiled step, batches.

    This is the seam a data-parallel strategy wraps: it replaces the returned run's
    `step_model` (e.g. by DistributedDataParallel around it) and passes its rank's
    shard as `train` (or replaces `batches` by a sharded loader).
    """
    model = setup.model.to(setup.device)
    if setup.channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    opt = create_optimizer(
        setup.optimizer, model.parameters(), lr=setup.lr, options=setup.optimizer_options
    )
    bound = BoundRun(model, opt, setup)
    hooks = [(t.name, h) for t in active if (h := t.start(bound)) is not None]
    from jiasu.train.techniques.compile import ResilientCompiled

    step_model = ResilientCompiled(model, setup.compile_mode) if setup.compile_mode else model
    batches, shuffle_generator = _batches(setup, train, seed, names)
    objective = objective or Objective(setup.task or CLASSIFICATION)
    live = LiveRun(setup, model, step_model, opt, hooks, batches, objective=objective, names=names)
    return live, shuffle_generator


def _loop(
    live: LiveRun,
    train: Samples,
    val: Samples | None,
    history: History,
    target: TargetCheck | None,
    epochs: int,
    callbacks: Sequence[Callback],
    quiet: bool,
    shuffle_generator: torch.Generator,
    resume_from: str | Path | None,
    recipe: Recipe | None,
    model_spec: ModelSpec | ExternalModel | None,
) -> None:
    """The epochs: steps, validation, target checks, callbacks and checkpoints, each
    point where processes differ asked of `live.strategy`."""
    strategy = live.strategy

    def save(directory: Path, keep: int) -> None:
        resume.save(directory, keep, run, live, callbacks, shuffle_generator, recipe, model_spec)

    run = RunState(unwrap(live.model), live.optimizer, history, val is not None,
                   save_checkpoint=strategy.checkpoint_saver(save),
                   metric_names=metric_names(live.objective))  # fmt: skip
    with strategy.resume_point(resume_from) as checkpoint:
        if checkpoint is not None:
            resume.restore(checkpoint, run, live, callbacks, shuffle_generator)
            live.clock_s = history.train_seconds
    for callback in callbacks:
        callback.on_train_begin(run)
    if live.setup.compile_mode and run.epoch < epochs:
        history.compile_seconds += compile_warmup(live, train)  # apart from train_seconds
    strategy.begin(run)

    with TaskProgress(enabled=progress_enabled(quiet)) as bar:
        run.log = bar.log if bar.enabled else (lambda message: None)
        for epoch in range(run.epoch + 1, epochs + 1):
            strategy.begin_epoch(epoch)
            bar.start(f"epoch {epoch}/{epochs}", total=len(live.batches))  # type: ignore[arg-type]
            lr = float(live.optimizer.param_groups[0]["lr"])
            figures = strategy.reduce(live, run_epoch(live, bar, target))
            val_figures = None
            val_seconds = 0.0
            if val is not None:
                val_start = time.perf_counter()
                val_figures = live.measure(val)
                val_seconds = time.perf_counter() - val_start
            val_loss = val_figures["loss"] if val_figures is not None else None
            # the same weights and figures in every process: all of them stop together
            check_epoch_finite(live.model, epoch, figures.train_loss, val_loss, lr)
            record = epoch_record(
                epoch,
                {"loss": figures.train_loss, **figures.train_metrics},
                val_figures,
                lr=lr,
                train_seconds=figures.train_seconds,
                val_seconds=val_seconds,
                samples=figures.samples,
            )
            history.epochs.append(record)
            run.epoch = epoch
            bar.log(_epoch_line(record, epochs))
            for callback in callbacks:
                callback.on_epoch_end(run, record)
            if figures.reached_target:
                run.log(f"target accuracy {target.accuracy:.2%} reached")  # type: ignore[union-attr]
                run.stop_training = True
            strategy.end_epoch(run, record)
            if run.stop_training:
                history.stopped_early = epoch < epochs or figures.reached_target
                break
    if target is not None:
        history.time_to_target_s = target.reached_at_s
        history.accuracy_curve = list(target.curve)
    finish(live)
    strategy.end(run)
    for callback in callbacks:
        callback.on_train_end(run)


@contextlib.contextmanager
def process_settings(setup: TrainSetup) -> Iterator[None]:
    """Process-wide settings a technique asked for, restored when training ends."""
    previous_threads = set_threads(setup.num_threads) if setup.num_threads else None
    previous_cudnn = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = setup.cudnn_benchmark or previous_cudnn
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = previous_cudnn
        if previous_threads is not None:
            set_threads(previous_threads)


def apply_techniques(
    setup: TrainSetup, techniques: list[TrainTechnique], history: History
) -> tuple[TrainSetup, list[TrainTechnique]]:
    active: list[TrainTechnique] = []
    for technique in techniques:
        answer = technique.applies_to(setup)
        if answer:
            setup = technique.configure(setup)
            active.append(technique)
            history.techniques_applied.append(technique.describe())
        else:
            history.techniques_skipped.append({"name": technique.name, "reason": answer.reason})
    return setup, active


def metric_names(objective: Objective) -> tuple[str, ...]:
    """Every figure an epoch record of this objective holds (with validation data)."""
    train = ["loss", *(["accuracy"] if objective.task.kind == "classification" else [])]
    val = ["loss", *objective.metrics()]
    return (*(f"train_{n}" for n in train), *(f"val_{n}" for n in val))


def _epoch_line(record: EpochRecord, epochs: int) -> str:
    shown = {"train_accuracy": "acc", "val_accuracy": "val_acc", "train_loss": "loss"}
    figures = "  ".join(
        f"{shown.get(name, name)} {value:.4f}" for name, value in record.metrics.items()
    )
    return (
        f"epoch {record.epoch}/{epochs}  {figures}  {record.train_seconds:.1f}s  "
        f"{record.samples_per_s:,.0f} samples/s"
    )


def data_kind(samples: Samples) -> DataKind:
    """How `samples` are held: tensors in memory, a Dataset, or the user's DataLoader."""
    if isinstance(samples, Examples):
        return "tensors"
    return "dataloader" if isinstance(samples, DataLoader) else "dataset"


def _loader_batch_size(samples: Samples) -> int | None:
    return samples.batch_size if isinstance(samples, DataLoader) else None


def _batches(
    setup: TrainSetup, train: Samples, seed: int, names: tuple[str, ...] | None = None
) -> tuple[Iterable[Batch], torch.Generator]:
    if isinstance(train, DataLoader):  # the user's batches, as the loader makes them
        return StreamedBatches(train, setup.device, names=names), torch.Generator()
    if not isinstance(train, Examples):
        generator = torch.Generator().manual_seed(seed)
        batches = dataset_batches(
            train, setup.batch_size, generator=generator, device=setup.device,
            pin_memory=setup.pin_memory, names=names, num_workers=setup.num_workers,
        )  # fmt: skip
        return batches, generator
    if setup.loader == "device":
        generator = torch.Generator(device=setup.device).manual_seed(seed)
        on_device = train.to(setup.device)
        batches_on_device = DeviceBatches(
            on_device.inputs, on_device.targets, setup.batch_size, generator=generator
        )
        return batches_on_device, generator
    generator = torch.Generator().manual_seed(seed)
    loader = dataloader_batches(
        train.inputs, train.targets, setup.batch_size, generator=generator, device=setup.device,
        pin_memory=setup.pin_memory,
    )  # fmt: skip
    return loader, generator


def _as_task_targets(objective: Objective, samples: Samples) -> Samples:
    """In-memory integer targets of a regression as float32 (streamed ones are cast by
    the loss and metrics)."""
    if (
        objective.task.kind == "regression"
        and isinstance(samples, Examples)
        and not samples.targets.dtype.is_floating_point
    ):
        return Examples(samples.inputs, samples.targets.float(), samples.signature)
    return samples


def _target(settings: TrainSettings, data: Data | None, objective: Objective) -> TargetCheck | None:
    value, metric = settings.target_accuracy, settings.target_metric
    if value is None:
        if data is not None:
            raise ConfigError("target_data was given without target_accuracy")
        return None
    known = ("loss", *objective.metrics())
    if metric not in known:
        raise ConfigError(
            f"the target metric {metric!r} is not one this {objective.task.kind} reports; "
            f"use one of {', '.join(known)}"
        )
    if data is None:
        raise ConfigError(
            "target_accuracy needs target_data (e.g. the test split) to check against"
        )
    return TargetCheck(float(value), as_samples(data, "target_data"),
                       settings.target_checks_per_epoch, metric=metric,
                       higher_is_better=not lower_is_better(metric))  # fmt: skip


def _resolve_fit_recipe(
    recipe: Recipe | str | None,
    model: nn.Module,
    called: CalledModel,
    train: Samples,
    objective: Objective,
    setup: TrainSetup,
    seed: int,
    quiet: bool,
    history: History,
) -> Recipe | None:
    """The recipe: as given, a preset or file by name, or "auto"
    (probed on copies of `model` from its current weights; its dropped probes go to
    `history.techniques_skipped` with their reasons)."""
    if recipe is None or isinstance(recipe, Recipe):
        return recipe
    if not isinstance(recipe, str):
        raise ConfigError(
            f"recipe must be a Recipe, a preset name such as 'fast' or 'auto', or a recipe "
            f"file; got {type(recipe).__name__}"
        )
    if recipe != "auto":
        from jiasu.train.recipes import resolve_recipe

        return resolve_recipe(recipe)
    from jiasu.train.auto import auto_recipe

    snapshot = copy.deepcopy(called.module)  # the weights before any training
    params = sum(p.numel() for p in model.parameters())
    spec = ExternalModel(
        name=f"{type(model).__module__}.{type(model).__qualname__} ({params} parameters)",
        builder=lambda: copy.deepcopy(snapshot),
    )
    auto = auto_recipe(
        spec, train, epochs=setup.epochs, batch_size=setup.batch_size, lr=setup.lr,
        optimizer=setup.optimizer, device=setup.device, seed=seed, quiet=quiet,
        objective=objective, names=called.names,
    )  # fmt: skip
    history.techniques_skipped.extend(
        {"name": d["name"], "reason": f"auto: {d['reason']}"} for d in auto.dropped()
    )
    return auto.recipe


def _training_techniques(recipe: Recipe | None) -> list[TrainTechnique]:
    if recipe is None:
        return []
    techniques = []
    for technique in recipe.techniques:
        if not isinstance(technique, TrainTechnique):
            raise ConfigError(
                f"technique {technique.name!r} acts at stage {technique.effect.stage.value!r}, "
                "not training; remove it from the training recipe"
            )
        techniques.append(technique)
    return techniques
