"""`fit`: a lean training loop whose speed-ups come from a `Recipe` of techniques."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import torch
import torch.nn.functional as F
from torch import nn

from jiasu.core.errors import ConfigError
from jiasu.core.recipe import Recipe
from jiasu.data import ImageDataset
from jiasu.hardware.device import resolve_device, synchronize
from jiasu.hardware.threads import set_threads
from jiasu.models import ModelSpec
from jiasu.train import checkpoint as ckpt
from jiasu.train.callbacks import Callback, RunState
from jiasu.train.evaluate import evaluate
from jiasu.train.history import EpochRecord, History
from jiasu.train.loaders import Batch, DeviceBatches, dataloader_batches
from jiasu.train.optimizers import create_optimizer
from jiasu.train.setup import TrainSetup, TrainTechnique
from jiasu.ui.progress import TaskProgress, progress_enabled

Data: TypeAlias = ImageDataset | tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class _Arrays:
    images: torch.Tensor  # (N, 1, 28, 28) float32
    labels: torch.Tensor  # (N,) int64


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
    model_spec: ModelSpec | None = None,
) -> History:
    """Train a classifier with cross-entropy on logits; return the per-epoch `History`.

    With no recipe this is plain PyTorch: torch's DataLoader, eager fp32, the chosen
    optimizer. A `Recipe` of training techniques changes how the same maths is run.
    `validation_split` takes the *last* fraction of `data` as validation, as Keras does.
    A seeded run is reproducible on the same machine; `resume_from` continues from a
    `ModelCheckpoint` folder as if the run had not stopped.

    >>> from jiasu.models import create_model
    >>> history = fit(create_model("mlp"), (x, y), epochs=1)  # doctest: +SKIP
    """
    _check_positive_int("epochs", epochs)
    _check_positive_int("batch_size", batch_size)
    train, val = _split(data, validation_split, validation_data)
    techniques = _training_techniques(recipe)
    torch.manual_seed(seed)
    dev, device_reason = resolve_device(device)
    setup = TrainSetup(
        model=model,
        device=dev,
        batch_size=batch_size,
        lr=lr,
        optimizer=optimizer.lower(),
        num_train_samples=int(train.labels.shape[0]),
    )
    history = History(device=str(dev), device_reason=device_reason)
    active: list[TrainTechnique] = []
    for technique in techniques:
        answer = technique.applies_to(setup)
        if answer:
            setup = technique.configure(setup)
            active.append(technique)
            history.techniques_applied.append(technique.describe())
        else:
            history.techniques_skipped.append({"name": technique.name, "reason": answer.reason})

    previous_threads = set_threads(setup.num_threads) if setup.num_threads else None
    try:
        return _train(
            setup, active, train, val, history,
            epochs=epochs, callbacks=callbacks, seed=seed, quiet=quiet,
            resume_from=resume_from, recipe=recipe, model_spec=model_spec,
        )  # fmt: skip
    finally:
        if previous_threads is not None:
            set_threads(previous_threads)


def _train(
    setup: TrainSetup,
    techniques: list[TrainTechnique],
    train: _Arrays,
    val: _Arrays | None,
    history: History,
    *,
    epochs: int,
    callbacks: Sequence[Callback],
    seed: int,
    quiet: bool,
    resume_from: str | Path | None,
    recipe: Recipe | None,
    model_spec: ModelSpec | None,
) -> History:
    model = setup.model.to(setup.device)
    optimizer = create_optimizer(
        setup.optimizer, model.parameters(), lr=setup.lr, options=setup.optimizer_options
    )
    batches, shuffle_generator = _batches(setup, train, seed)

    def save(directory: Path, keep: int) -> None:
        _save_checkpoint(
            directory, keep, run, techniques, callbacks, shuffle_generator, recipe, model_spec
        )

    run = RunState(model, optimizer, history, has_validation=val is not None, save_checkpoint=save)
    if resume_from is not None:
        _resume(resume_from, run, techniques, callbacks, shuffle_generator)
    for callback in callbacks:
        callback.on_train_begin(run)

    forward_context = _combined_context(techniques, setup)
    with TaskProgress(enabled=progress_enabled(quiet)) as bar:
        run.log = bar.log if bar.enabled else (lambda message: None)
        for epoch in range(run.epoch + 1, epochs + 1):
            bar.start(f"epoch {epoch}/{epochs}", total=len(batches))  # type: ignore[arg-type]
            record = _run_epoch(
                epoch, model, optimizer, batches, techniques, forward_context, val, setup, bar
            )
            history.epochs.append(record)
            run.epoch = epoch
            bar.log(_epoch_line(record, epochs))
            for callback in callbacks:
                callback.on_epoch_end(run, record)
            if run.stop_training:
                history.stopped_early = epoch < epochs
                break
    for callback in callbacks:
        callback.on_train_end(run)
    return history


def _run_epoch(
    epoch: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Iterable[Batch],
    techniques: list[TrainTechnique],
    forward_context: Any,
    val: _Arrays | None,
    setup: TrainSetup,
    bar: TaskProgress,
) -> EpochRecord:
    lr = float(optimizer.param_groups[0]["lr"])
    model.train()
    loss_sum = torch.zeros((), device=setup.device)  # kept on device: no sync per step
    correct = torch.zeros((), device=setup.device, dtype=torch.long)
    seen = 0
    start = time.perf_counter()
    for x, y in batches:
        with forward_context():
            logits = model(x)  # (B, classes)
            loss = F.cross_entropy(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        proceed = [t.after_backward(model) for t in techniques]
        if all(proceed):
            optimizer.step()
            for t in techniques:
                t.after_step(model)
        n = y.shape[0]
        loss_sum += loss.detach() * n
        correct += (logits.detach().argmax(dim=1) == y).sum()
        seen += n
        bar.advance()
    synchronize(setup.device)
    train_seconds = time.perf_counter() - start

    val_loss = val_accuracy = None
    val_start = time.perf_counter()
    if val is not None:
        val_loss, val_accuracy = evaluate(model, val.images, val.labels, device=setup.device)
    val_seconds = time.perf_counter() - val_start if val is not None else 0.0
    return EpochRecord(
        epoch=epoch,
        train_loss=loss_sum.item() / seen,
        train_accuracy=correct.item() / seen,
        val_loss=val_loss,
        val_accuracy=val_accuracy,
        lr=lr,
        train_seconds=train_seconds,
        val_seconds=val_seconds,
        samples_per_s=seen / train_seconds,
    )


def _epoch_line(record: EpochRecord, epochs: int) -> str:
    line = (
        f"epoch {record.epoch}/{epochs}  loss {record.train_loss:.4f}  "
        f"acc {record.train_accuracy:.4f}"
    )
    if record.val_loss is not None:
        line += f"  val_loss {record.val_loss:.4f}  val_acc {record.val_accuracy:.4f}"
    return line + f"  {record.train_seconds:.1f}s  {record.samples_per_s:,.0f} samples/s"


def _combined_context(techniques: list[TrainTechnique], setup: TrainSetup) -> Any:
    @contextlib.contextmanager
    def context() -> Any:
        with contextlib.ExitStack() as stack:
            for t in techniques:
                stack.enter_context(t.forward_context(setup))
            yield

    return context


def _batches(
    setup: TrainSetup, train: _Arrays, seed: int
) -> tuple[Iterable[Batch], torch.Generator]:
    if setup.loader == "device":
        generator = torch.Generator(device=setup.device).manual_seed(seed)
        images = train.images.to(setup.device)
        labels = train.labels.to(setup.device)
        return DeviceBatches(images, labels, setup.batch_size, generator=generator), generator
    generator = torch.Generator().manual_seed(seed)
    loader = dataloader_batches(
        train.images, train.labels, setup.batch_size, generator=generator, device=setup.device
    )
    return loader, generator


# --- data ------------------------------------------------------------------------------
def _as_arrays(data: Data, what: str) -> _Arrays:
    if isinstance(data, ImageDataset):
        return _Arrays(data.images, data.labels)
    if isinstance(data, tuple) and len(data) == 2:
        images, labels = (torch.as_tensor(a) for a in data)
        if images.ndim == 3:  # (N, 28, 28) → (N, 1, 28, 28)
            images = images.unsqueeze(1)
        if images.ndim != 4 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
            raise ConfigError(
                f"{what} must be images (N, C, H, W) and labels (N,), got shapes "
                f"{tuple(images.shape)} and {tuple(labels.shape)}"
            )
        if images.dtype == torch.uint8:
            images = images.float() / 255.0
        return _Arrays(images.float(), labels.long())
    raise ConfigError(
        f"{what} must be an ImageDataset or a tuple (images, labels), got {type(data).__name__}"
    )


def _split(
    data: Data, validation_split: float, validation_data: Data | None
) -> tuple[_Arrays, _Arrays | None]:
    arrays = _as_arrays(data, "data")
    if validation_data is not None:
        if validation_split:
            raise ConfigError("give validation_split or validation_data, not both")
        return arrays, _as_arrays(validation_data, "validation_data")
    if not isinstance(validation_split, int | float) or not 0.0 <= validation_split < 1.0:
        raise ConfigError(f"validation_split must be in [0, 1), got {validation_split!r}")
    n = arrays.labels.shape[0]
    n_val = int(n * validation_split)
    if n_val == 0:
        return arrays, None
    cut = n - n_val  # Keras: the last fraction, before any shuffling
    return (
        _Arrays(arrays.images[:cut], arrays.labels[:cut]),
        _Arrays(arrays.images[cut:], arrays.labels[cut:]),
    )


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


def _check_positive_int(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")


# --- checkpoints -----------------------------------------------------------------------
def _save_checkpoint(
    directory: Path,
    keep: int,
    run: RunState,
    techniques: list[TrainTechnique],
    callbacks: Sequence[Callback],
    shuffle_generator: torch.Generator,
    recipe: Recipe | None,
    model_spec: ModelSpec | None,
) -> None:
    optimizer_meta, training_state = ckpt.flatten_optimizer_state(run.optimizer.state_dict())
    training_state["rng.torch"] = torch.get_rng_state()
    training_state["rng.shuffle"] = shuffle_generator.get_state()
    if torch.cuda.is_available():
        training_state["rng.cuda"] = torch.cuda.get_rng_state()
    for t in techniques:
        for key, tensor in t.state_dict().items():
            training_state[f"technique.{t.name}.{key}"] = tensor
    meta = {
        "history": run.history.to_dict(),
        "optimizer": optimizer_meta,
        "callbacks": [{"type": type(c).__name__, "state": c.state_dict()} for c in callbacks],
        "recipe": recipe.to_dict() if recipe else None,
        "model_spec": model_spec.to_dict() if model_spec else None,
    }
    ckpt.write_checkpoint(
        directory,
        epoch=run.epoch,
        model_state=run.model.state_dict(),
        training_state=training_state,
        meta=meta,
        keep=keep,
    )


def _resume(
    path: str | Path,
    run: RunState,
    techniques: list[TrainTechnique],
    callbacks: Sequence[Callback],
    shuffle_generator: torch.Generator,
) -> None:
    checkpoint = ckpt.read_checkpoint(path)
    ckpt.load_model_weights(run.model, checkpoint.model_state, checkpoint.path)
    try:
        run.optimizer.load_state_dict(checkpoint.optimizer_state())
    except (ValueError, KeyError, RuntimeError) as exc:
        raise ckpt.CheckpointError(
            f"optimizer state in {checkpoint.path} does not fit this optimizer ({exc}); "
            "resume with the same optimizer and model"
        ) from None
    state = checkpoint.training_state
    torch.set_rng_state(state["rng.torch"])
    shuffle_generator.set_state(state["rng.shuffle"])
    if "rng.cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["rng.cuda"])
    for t in techniques:
        prefix = f"technique.{t.name}."
        t.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
    saved = checkpoint.meta.get("callbacks", [])
    for callback, entry in zip(callbacks, saved, strict=False):
        if entry.get("type") == type(callback).__name__:
            callback.load_state_dict(entry["state"])
    restored = History.from_dict(checkpoint.meta["history"])
    run.history.epochs[:] = restored.epochs
    run.epoch = checkpoint.epoch
