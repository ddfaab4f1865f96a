"""`fit`: a lean training loop whose speed-ups come from a `Recipe` of techniques."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import torch
from torch import nn

from jiasu.core.errors import ConfigError
from jiasu.core.recipe import Recipe
from jiasu.hardware.device import resolve_device
from jiasu.hardware.threads import set_threads
from jiasu.train import resume
from jiasu.train.callbacks import Callback, RunState
from jiasu.train.data import Arrays, Data, as_arrays, split_validation
from jiasu.train.finite import check_epoch_finite
from jiasu.train.history import EpochRecord, History
from jiasu.train.loaders import Batch, DeviceBatches, dataloader_batches
from jiasu.train.loop import LiveRun, TargetCheck, compile_warmup, finish, run_epoch
from jiasu.train.model_arg import ExternalModel, ModelSpec
from jiasu.train.optimizers import create_optimizer
from jiasu.train.setup import BoundRun, TrainSetup, TrainTechnique
from jiasu.ui.progress import TaskProgress, progress_enabled

MAX_SEED = 2**32 - 1


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
    recipe: Recipe | None = None,
    seed: int = 0,
    device: str = "cpu",
    quiet: bool = False,
    resume_from: str | Path | None = None,
    model_spec: ModelSpec | ExternalModel | None = None,
    target_accuracy: float | None = None,
    target_data: Data | None = None,
    target_checks_per_epoch: int = 1,
) -> History:
    """Train a classifier with cross-entropy on logits; return the per-epoch `History`.

    With no recipe this is plain PyTorch: torch's DataLoader, eager fp32, the chosen
    optimizer. A `Recipe` of training techniques changes how the same maths is run
    (exact and numeric techniques) or what is run (approximate ones). Each technique
    that does not apply is skipped, and `History.techniques_skipped` says why.

    `validation_split` takes the *last* fraction of `data` as validation, as Keras does.
    With `target_accuracy`, training stops once accuracy on `target_data` reaches it,
    checked `target_checks_per_epoch` times per epoch with the checking time excluded.
    A seeded run is reproducible on the same machine; `resume_from` continues from a
    `ModelCheckpoint` folder exactly as if the run had not stopped.

    >>> from jiasu.models import create_model
    >>> history = fit(create_model("mlp"), (x, y), epochs=1)  # doctest: +SKIP
    """
    _check_positive_int("epochs", epochs)
    _check_positive_int("batch_size", batch_size)
    _check_positive_int("target_checks_per_epoch", target_checks_per_epoch)
    check_seed(seed)
    if isinstance(lr, bool) or not isinstance(lr, int | float) or not 0 < lr < math.inf:
        raise ConfigError(f"learning rate must be a positive finite number, got {lr!r}")
    train, val = split_validation(data, validation_split, validation_data)
    target = _target(target_accuracy, target_data, target_checks_per_epoch)
    torch.manual_seed(seed)
    dev, device_reason = resolve_device(device)
    setup = TrainSetup(
        model=model,
        device=dev,
        batch_size=batch_size,
        lr=lr,
        optimizer=optimizer.lower(),
        num_train_samples=len(train),
        epochs=epochs,
    )
    history = History(device=str(dev), device_reason=device_reason)
    setup, active = apply_techniques(setup, _training_techniques(recipe), history)
    history.device = str(setup.device)
    if target is not None:
        history.target_accuracy = target.accuracy

    with process_settings(setup):
        live, shuffle_generator = build_live_run(setup, active, train, seed)
        _loop(live, train, val, history, target, epochs, callbacks, quiet, shuffle_generator,
              resume_from, recipe, model_spec)  # fmt: skip
    return history


def build_live_run(
    setup: TrainSetup, active: Sequence[TrainTechnique], train: Arrays, seed: int
) -> tuple[LiveRun, torch.Generator]:
    """Model on its device (in its layout), optimizer, technique hooks, compiled step, batches."""
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
    batches, shuffle_generator = _batches(setup, train, seed)
    live = LiveRun(setup, model, step_model, opt, hooks, batches)
    return live, shuffle_generator


def _loop(
    live: LiveRun,
    train: Arrays,
    val: Arrays | None,
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
    def save(directory: Path, keep: int) -> None:
        resume.save(directory, keep, run, live, callbacks, shuffle_generator, recipe, model_spec)

    run = RunState(live.model, live.optimizer, history, val is not None, save_checkpoint=save)
    if resume_from is not None:
        resume.restore(resume_from, run, live, callbacks, shuffle_generator)
        live.clock_s = history.train_seconds
    for callback in callbacks:
        callback.on_train_begin(run)
    if live.setup.compile_mode and run.epoch < epochs:
        history.compile_seconds += compile_warmup(live, train)  # apart from train_seconds

    with TaskProgress(enabled=progress_enabled(quiet)) as bar:
        run.log = bar.log if bar.enabled else (lambda message: None)
        for epoch in range(run.epoch + 1, epochs + 1):
            bar.start(f"epoch {epoch}/{epochs}", total=len(live.batches))  # type: ignore[arg-type]
            lr = float(live.optimizer.param_groups[0]["lr"])
            figures = run_epoch(live, bar, target)
            val_loss = val_accuracy = None
            val_seconds = 0.0
            if val is not None:
                val_start = time.perf_counter()
                val_loss, val_accuracy = live.evaluate(val)
                val_seconds = time.perf_counter() - val_start
            check_epoch_finite(live.model, epoch, figures.train_loss, val_loss, lr)
            record = EpochRecord(
                epoch=epoch,
                train_loss=figures.train_loss,
                train_accuracy=figures.train_accuracy,
                val_loss=val_loss,
                val_accuracy=val_accuracy,
                lr=lr,
                train_seconds=figures.train_seconds,
                val_seconds=val_seconds,
                samples_per_s=figures.samples / figures.train_seconds,
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
            if run.stop_training:
                history.stopped_early = epoch < epochs or figures.reached_target
                break
    if target is not None:
        history.time_to_target_s = target.reached_at_s
        history.accuracy_curve = list(target.curve)
    finish(live)
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


def _epoch_line(record: EpochRecord, epochs: int) -> str:
    line = (
        f"epoch {record.epoch}/{epochs}  loss {record.train_loss:.4f}  "
        f"acc {record.train_accuracy:.4f}"
    )
    if record.val_loss is not None:
        line += f"  val_loss {record.val_loss:.4f}  val_acc {record.val_accuracy:.4f}"
    return line + f"  {record.train_seconds:.1f}s  {record.samples_per_s:,.0f} samples/s"


def _batches(
    setup: TrainSetup, train: Arrays, seed: int
) -> tuple[Iterable[Batch], torch.Generator]:
    if setup.loader == "device":
        generator = torch.Generator(device=setup.device).manual_seed(seed)
        images = train.images.to(setup.device)
        labels = train.labels.to(setup.device)
        return DeviceBatches(images, labels, setup.batch_size, generator=generator), generator
    generator = torch.Generator().manual_seed(seed)
    loader = dataloader_batches(
        train.images, train.labels, setup.batch_size, generator=generator, device=setup.device,
        pin_memory=setup.pin_memory,
    )  # fmt: skip
    return loader, generator


def _target(accuracy: float | None, data: Data | None, per_epoch: int) -> TargetCheck | None:
    if accuracy is None:
        if data is not None:
            raise ConfigError("target_data was given without target_accuracy")
        return None
    if not isinstance(accuracy, int | float) or not 0.0 < accuracy <= 1.0:
        raise ConfigError(f"target_accuracy must be in (0, 1], got {accuracy!r}")
    if data is None:
        raise ConfigError(
            "target_accuracy needs target_data (e.g. the test split) to check against"
        )
    return TargetCheck(float(accuracy), as_arrays(data, "target_data"), per_epoch)


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


def check_seed(seed: object) -> int:
    """Return `seed` when it is a whole number from 0 to 2**32 - 1 (what torch, numpy and
    every engine accept); else `ConfigError`."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"seed must be a whole number from 0 to 2**32 - 1, got {seed!r:.40}")
    return seed


def _check_positive_int(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
