"""Glue between a live run and checkpoint files: save everything, restore everything."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from jiasu.core.errors import CheckpointError
from jiasu.core.recipe import Recipe
from jiasu.train import checkpoint as ckpt
from jiasu.train.callbacks import Callback, RunState
from jiasu.train.history import History
from jiasu.train.loop import LiveRun
from jiasu.train.model_arg import ExternalModel, ModelSpec


def save(
    directory: Path,
    keep: int,
    run: RunState,
    live: LiveRun,
    callbacks: Sequence[Callback],
    shuffle_generator: torch.Generator,
    recipe: Recipe | None,
    model_spec: ModelSpec | ExternalModel | None,
) -> None:
    optimizer_meta, training_state = ckpt.flatten_optimizer_state(run.optimizer.state_dict())
    training_state["rng.torch"] = torch.get_rng_state()
    training_state["rng.shuffle"] = shuffle_generator.get_state()
    if torch.cuda.is_available():
        training_state["rng.cuda"] = torch.cuda.get_rng_state()
    for name, hook in live.hooks:
        for key, tensor in hook.state_dict().items():
            training_state[f"technique.{name}.{key}"] = tensor
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


def restore(
    path: str | Path,
    run: RunState,
    live: LiveRun,
    callbacks: Sequence[Callback],
    shuffle_generator: torch.Generator,
) -> None:
    checkpoint = ckpt.read_checkpoint(path)
    ckpt.load_model_weights(run.model, checkpoint.model_state, checkpoint.path)
    try:
        run.optimizer.load_state_dict(checkpoint.optimizer_state())
    except (ValueError, KeyError, RuntimeError) as exc:
        raise CheckpointError(
            f"optimizer state in {checkpoint.path} does not fit this optimizer ({exc}); "
            "resume with the same optimizer and model"
        ) from None
    state = checkpoint.training_state
    torch.set_rng_state(state["rng.torch"])
    shuffle_generator.set_state(state["rng.shuffle"])
    if "rng.cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["rng.cuda"])
    for name, hook in live.hooks:
        prefix = f"technique.{name}."
        hook.load_state_dict(
            {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        )
    saved = checkpoint.meta.get("callbacks", [])
    for callback, entry in zip(callbacks, saved, strict=False):
        if entry.get("type") == type(callback).__name__:
            callback.load_state_dict(entry["state"])
    restored = History.from_dict(checkpoint.meta["history"])
    run.history.epochs[:] = restored.epochs
    run.history.compile_seconds = restored.compile_seconds
    run.epoch = checkpoint.epoch
