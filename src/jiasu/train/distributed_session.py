"""`jiasu train --engine ...`: the same session, trained data-parallel through an engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from jiasu.core.errors import ConfigError
from jiasu.core.recipe import Recipe
from jiasu.data import DatasetSplits
from jiasu.train.evaluate import evaluate
from jiasu.train.model_arg import ExternalModel, ModelSpec
from jiasu.train.session import TrainResult, TrainSettings, resolve_session_recipe


def distributed_session(
    spec: ModelSpec | ExternalModel,
    splits: DatasetSplits,
    recipe_spec: str | Recipe,
    settings: TrainSettings,
    *,
    engine: str,
    workers: int,
    address: str | None = None,
    data_dir: Path | None = None,
    train_samples: int | None = None,
    quiet: bool = False,
    save: Path | None = None,
    log: Any = None,
) -> TrainResult:
    """Train with `engine` on `workers` workers; batch size and lr are per worker.

    Each worker reads MNIST itself (from `data_dir` or jiasu's usual places) and validates
    on the test split; the result is tested here on the full test split.
    """
    from jiasu.engines import MnistSource, TrainJob, train_distributed

    if settings.target_accuracy is not None:
        raise ConfigError("--target-accuracy is not supported with --engine yet; drop one of them")
    if not isinstance(spec, ModelSpec):
        raise ConfigError(
            f"--engine trains registry models (mlp, cnn, resnet, vgg); {spec.name!r} is not one"
        )
    recipe, auto = resolve_session_recipe(spec, splits, recipe_spec, settings, quiet=quiet, log=log)
    job = TrainJob(
        model=spec,
        data=MnistSource(None if data_dir is None else str(data_dir), train_samples=train_samples),
        epochs=settings.epochs,
        batch_size=settings.batch_size,
        optimizer=settings.optimizer,
        lr=settings.lr,
        seed=settings.seed,
        recipe=recipe,
    )
    if log:
        log(f"training on {engine} with {workers} workers...")
    result = train_distributed(job, engine=engine, workers=workers, address=address)
    model = result.model
    _, test_accuracy = evaluate(
        model, splits.test.images, splits.test.labels, device=torch.device("cpu")
    )
    if save is not None:
        result.save(save)
    if log:
        log(
            f"{engine}: {result.total_seconds:.1f} s in total, {result.loop_seconds:.1f} s in the "
            f"training loop, {result.startup_seconds:.1f} s starting up"
        )
    return TrainResult(spec, recipe, result.history, test_accuracy, auto, splits.source, settings)
