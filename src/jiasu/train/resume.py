"""Glue between a live run and checkpoint files: save everything, restore everything."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from jiasu.core.errors import CheckpointError
from jiasu.core.recipe import Recipe
from jiasu.models.weights import check_weights_fit, load_model_weights
from jiasu.train import checkpoint as ckpt
from jiasu.train.callbacks import Callback, RunState
from jiasu.train.history import EpochRecord, History
from jiasu.train.loop import LiveRun
from jiasu.train.model_arg import ExternalModel, ModelSpec

MAX_EPOCH = 1_000_000


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
    """Put the run back where the checkpoint at `path` left it.

    Everything is checked before anything is changed: the epoch, the history, the RNG
    states, the shape of every optimizer and technique tensor against what this run
    holds, and that weights and optimizer state are finite. Any fault is one
    `CheckpointError` sentence naming the checkpoint and the entry.
    """
    checkpoint = ckpt.read_checkpoint(path)
    where = checkpoint.path
    meta, state = checkpoint.meta, checkpoint.training_state
    check_weights_fit(run.model, checkpoint.model_state, where)
    _check_finite("model weights", checkpoint.model_state, where)
    epoch = _epoch(meta.get("epoch"), where)
    history = _history(meta.get("history"), where)
    optimizer_state = _optimizer_state(checkpoint, run.optimizer)
    rng = _rng_states(state, where, shuffle_generator)
    hook_states = _hook_states(state, live, where)

    load_model_weights(run.model, checkpoint.model_state, where)
    try:
        run.optimizer.load_state_dict(optimizer_state)
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise CheckpointError(
            f"optimizer state in {where} does not fit this optimizer ({exc}); "
            "resume with the same optimizer and model"
        ) from None
    torch.set_rng_state(rng["rng.torch"])
    shuffle_generator.set_state(rng["rng.shuffle"])
    if "rng.cuda" in rng:
        torch.cuda.set_rng_state(rng["rng.cuda"])
    for (name, hook), hook_state in zip(live.hooks, hook_states, strict=True):
        _load_part(f"technique {name!r}", where, hook.load_state_dict, hook_state)
    _restore_callbacks(meta.get("callbacks", []), callbacks, where)
    run.history.epochs[:] = history.epochs
    run.history.compile_seconds = history.compile_seconds
    run.epoch = epoch


# --- checks: each fault is one sentence naming the checkpoint ---------------------------
def _bad(where: Path, what: str) -> CheckpointError:
    return CheckpointError(
        f"checkpoint {where} is damaged: {what}; resume from another checkpoint or start over"
    )


def _epoch(value: object, where: Path) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_EPOCH:
        raise _bad(where, f"its epoch is {value!r:.40}, not a whole number from 0 to {MAX_EPOCH}")
    return value


def _history(value: object, where: Path) -> History:
    if not isinstance(value, dict) or not isinstance(value.get("epochs", []), list):
        raise _bad(where, "its history is not an object with a list of epochs")
    fields = dataclasses.fields(EpochRecord)
    required = {f.name for f in fields if f.default is dataclasses.MISSING}
    nullable = {f.name for f in fields if "None" in str(f.type)}
    for index, record in enumerate(value.get("epochs", [])):
        ok = (
            isinstance(record, dict)
            and required <= set(record) <= {f.name for f in fields}
            and all(
                (v is None and k in nullable) or _number(v)
                for k, v in record.items()
                if k != "metrics"
            )
            and _figures(record.get("metrics", {}))
        )
        if not ok:
            raise _bad(where, f"record {index + 1} of its history is not a set of epoch figures")
    try:
        return History.from_dict(value)
    except (TypeError, ValueError, KeyError) as exc:
        raise _bad(where, f"its history cannot be read ({exc})") from None


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _figures(value: object) -> bool:
    """An epoch's metrics: names to numbers."""
    return isinstance(value, dict) and all(
        isinstance(k, str) and _number(v) for k, v in value.items()
    )


def _optimizer_state(checkpoint: ckpt.Checkpoint, optimizer: torch.optim.Optimizer) -> dict:
    """The optimizer state, each tensor checked against its parameter: the parameter's
    shape (moments, momentum) or a 0-d scalar (step counts), and finite."""
    where = checkpoint.path
    try:
        state = checkpoint.optimizer_state()
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise _bad(
            where, f"its optimizer state cannot be read ({type(exc).__name__}: {exc})"
        ) from None
    _check_param_groups(state["param_groups"], optimizer.param_groups, where)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for index, values in state["state"].items():
        if not 0 <= index < len(params):
            raise _bad(where, f"it holds optimizer state for parameter {index} of {len(params)}")
        param = params[index]
        for key, value in values.items():
            if not isinstance(value, torch.Tensor):
                continue
            if value.ndim > 0 and value.shape != param.shape:
                raise CheckpointError(
                    f"optimizer state {key!r} of parameter {index} in {where} has shape "
                    f"{tuple(value.shape)} but the parameter has {tuple(param.shape)}; "
                    "resume with the same model and optimizer that wrote it"
                )
            _check_finite(f"optimizer state {key!r} of parameter {index}", {key: value}, where)
    return state


def _check_param_groups(saved: list[dict], current: list[dict], where: Path) -> None:
    """Hyper-parameters (lr, betas, ...) of the type this optimizer uses, and finite."""
    if len(saved) != len(current):
        raise _bad(where, f"it holds {len(saved)} optimizer parameter groups, not {len(current)}")
    for group, now in zip(saved, current, strict=True):
        for key, reference in now.items():
            if key == "params" or key not in group:
                continue
            value = group[key]
            if isinstance(reference, int | float) and not isinstance(reference, bool):
                ok = _finite_number(value)
            elif isinstance(reference, list | tuple):
                ok = isinstance(value, list | tuple) and len(value) == len(reference)
                ok = ok and all(_finite_number(v) for v in value)
            else:
                ok = type(value) is type(reference) or value is None or reference is None
            if not ok:
                raise _bad(where, f"optimizer setting {key!r} is {value!r:.40}")


def _finite_number(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and (isinstance(value, int) or math.isfinite(value))
    )


def _rng_states(
    state: dict[str, torch.Tensor], where: Path, shuffle_generator: torch.Generator
) -> dict[str, torch.Tensor]:
    """The RNG states, each a byte tensor of the size this run's generator uses."""
    expected = {"rng.torch": torch.get_rng_state(), "rng.shuffle": shuffle_generator.get_state()}
    if "rng.cuda" in state and torch.cuda.is_available():
        expected["rng.cuda"] = torch.cuda.get_rng_state()
    for key, reference in expected.items():
        value = state.get(key)
        if value is None:
            raise _bad(where, f"its random-number state {key!r} is missing")
        if value.dtype != reference.dtype or value.shape != reference.shape:
            raise _bad(
                where,
                f"its random-number state {key!r} is {value.dtype} of shape "
                f"{tuple(value.shape)}, not {reference.dtype} of shape {tuple(reference.shape)}",
            )
    return {key: state[key] for key in expected}


def _hook_states(
    state: dict[str, torch.Tensor], live: LiveRun, where: Path
) -> list[dict[str, torch.Tensor]]:
    """Each technique's saved tensors, shaped like the ones it holds now."""
    result = []
    for name, hook in live.hooks:
        prefix = f"technique.{name}."
        saved = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        for key, now in hook.state_dict().items():
            if key in saved and saved[key].shape != now.shape:
                raise _bad(
                    where,
                    f"technique {name!r} saved {key!r} with shape {tuple(saved[key].shape)}, "
                    f"but this run holds {tuple(now.shape)}",
                )
        _check_finite(f"technique {name!r} state", saved, where)
        result.append(saved)
    return result


def _restore_callbacks(saved: object, callbacks: Sequence[Callback], where: Path) -> None:
    if not isinstance(saved, list) or not all(
        isinstance(entry, dict) and isinstance(entry.get("state", {}), dict) for entry in saved
    ):
        raise _bad(where, "its callback states are not a list of objects with a state object")
    for callback, entry in zip(callbacks, saved, strict=False):
        if entry.get("type") == type(callback).__name__:
            _load_part(f"callback {type(callback).__name__}", where, callback.load_state_dict,
                       entry["state"])  # fmt: skip


def _load_part(what: str, where: Path, load: Callable[[Any], None], state: Any) -> None:
    try:
        load(state)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise _bad(
            where, f"the state of {what} cannot be restored ({type(exc).__name__}: {exc})"
        ) from None


def _check_finite(what: str, tensors: Mapping[str, torch.Tensor], where: Path) -> None:
    for key, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise _bad(where, f"{what} ({key}) hold NaN or infinity, so training would go on NaN")
