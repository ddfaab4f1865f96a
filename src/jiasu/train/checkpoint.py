"""Resumable checkpoints: weights in safetensors, everything else in JSON.

Layout of a checkpoint folder (``DIR/epoch-0003``)::

    model.safetensors     model weights (state_dict)
    training.safetensors  optimizer tensors, RNG states, technique tensors
    checkpoint.json       epoch, history, optimizer hyper-parameters, callback states,
                          model spec, recipe, format ("jiasu-checkpoint") and version

Nothing here unpickles: safetensors holds only tensors, JSON only plain values.

A checkpoint directory may hold the user's other files: jiasu writes there only
``epoch-NNNN`` folders and ``latest.json``, replaces or prunes an ``epoch-NNNN`` folder only
if its checkpoint.json shows jiasu wrote it, and refuses a ``latest.json`` it did not write.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from jiasu.core.atomic import JiasuFolder, atomic_directory, atomic_write_text, remove_directory
from jiasu.core.errors import CheckpointError, ConfigError

FORMAT_VERSION = 1
LATEST = "latest.json"
MODEL_FILE = "model.safetensors"
TRAINING_FILE = "training.safetensors"
META_FILE = "checkpoint.json"
FORMAT = "jiasu-checkpoint"
_EPOCH_FOLDER = re.compile(r"^epoch-(\d{4,})$")


def _written_before_format_key(meta: dict[str, Any]) -> bool:
    # checkpoint.json files written before it named its format have a version and an epoch
    return isinstance(meta.get("format_version"), int) and isinstance(meta.get("epoch"), int)


FOLDER = JiasuFolder(
    "checkpoint", META_FILE, FORMAT, files=(MODEL_FILE, TRAINING_FILE),
    legacy=_written_before_format_key,
)  # fmt: skip


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint read back from disk."""

    path: Path
    meta: dict[str, Any]
    model_state: dict[str, torch.Tensor]
    training_state: dict[str, torch.Tensor]

    @property
    def epoch(self) -> int:
        return int(self.meta["epoch"])

    def optimizer_state(self) -> dict[str, Any]:
        return unflatten_optimizer_state(self.meta["optimizer"], self.training_state)


# --- optimizer state ↔ (tensors, JSON) -------------------------------------------------
def flatten_optimizer_state(
    state: Mapping[str, Any],
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Split an optimizer state_dict into JSON-able metadata and named tensors."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, per_param in state["state"].items():
        for key, value in per_param.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(index), {})[key] = value
    meta = {"param_groups": state["param_groups"], "scalars": scalars}
    return meta, tensors


def unflatten_optimizer_state(
    meta: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]
) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, tensor in tensors.items():
        if name.startswith("optimizer."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = tensor
    for index, values in meta.get("scalars", {}).items():
        state.setdefault(int(index), {}).update(values)
    return {"state": state, "param_groups": [dict(g) for g in meta["param_groups"]]}


# --- writing ---------------------------------------------------------------------------
def write_checkpoint(
    directory: Path,
    *,
    epoch: int,
    model_state: Mapping[str, torch.Tensor],
    training_state: Mapping[str, torch.Tensor],
    meta: Mapping[str, Any],
    keep: int = 2,
) -> Path:
    """Write ``directory/epoch-NNNN`` atomically, point ``latest.json`` at it, prune old ones.

    Only jiasu's own checkpoints are replaced or pruned (see the module docstring).
    """
    directory.mkdir(parents=True, exist_ok=True)
    name = f"epoch-{epoch:04d}"
    with atomic_directory(directory / name, FOLDER) as staging:
        save_file(_contiguous_cpu(model_state), str(staging / MODEL_FILE))
        save_file(_contiguous_cpu(training_state), str(staging / TRAINING_FILE))
        full_meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "epoch": epoch, **meta}
        (staging / META_FILE).write_text(json.dumps(full_meta, indent=2), encoding="utf-8")
    _check_latest(directory)
    atomic_write_text(directory / LATEST, json.dumps({"checkpoint": name, "epoch": epoch}) + "\n")
    _prune(directory, keep=keep, current=name)
    return directory / name


def check_checkpoint_dir(directory: Path, *, owner: str = "ModelCheckpoint") -> None:
    """Raise `ConfigError` (naming `owner`) unless checkpoints can be written in `directory`.

    Called before training: `directory` must be a folder or a new path in a writable
    place, its ``latest.json`` (if any) jiasu's, and each ``epoch-NNNN`` in it jiasu's
    checkpoint or an empty folder.
    """
    from jiasu.core.outputs import check_writable

    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"{owner}: {directory} is a file; give a folder for the checkpoints")
    check_writable(owner, directory, inside=True)
    if not directory.is_dir():
        return
    _check_latest(directory, owner)
    for entry in sorted(directory.iterdir()):
        if _EPOCH_FOLDER.match(entry.name) and not FOLDER.owns(entry):
            if entry.is_dir() and not entry.is_symlink() and not any(entry.iterdir()):
                continue
            raise ConfigError(
                f"{owner}: {entry} is not a checkpoint jiasu wrote, and jiasu writes "
                f"epoch-NNNN folders in {directory}; move it away or choose another folder"
            )


def _check_latest(directory: Path, owner: str = "ModelCheckpoint") -> None:
    latest = directory / LATEST
    if not os.path.lexists(latest):
        return
    try:
        pointer = json.loads(latest.read_bytes()[:4096])
    except (OSError, ValueError):
        pointer = None
    ours = (
        isinstance(pointer, dict)
        and set(pointer) == {"checkpoint", "epoch"}
        and isinstance(pointer["checkpoint"], str)
        and _EPOCH_FOLDER.match(pointer["checkpoint"]) is not None
        and not latest.is_symlink()
    )
    if not ours:
        raise ConfigError(
            f"{owner}: {latest} is not a file jiasu wrote, and jiasu keeps its pointer to the "
            f"latest checkpoint there; move it away or choose another folder"
        )


def _contiguous_cpu(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors refuses shared or non-contiguous storage; clone keeps tied weights apart.
    return {k: v.detach().cpu().contiguous().clone() for k, v in state.items()}


def _prune(directory: Path, *, keep: int, current: str) -> None:
    """Delete jiasu's own checkpoints beyond the newest `keep`; nothing else."""
    checkpoints = sorted(
        (int(match[1]), path)
        for path in directory.iterdir()
        if (match := _EPOCH_FOLDER.match(path.name)) and FOLDER.owns(path)
    )
    for _, old in checkpoints[:-keep]:
        if old.name != current:
            remove_directory(old, FOLDER)  # checks again, under the folder's lock


# --- reading ---------------------------------------------------------------------------
def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint folder, or a ModelCheckpoint directory (then its latest checkpoint)."""
    path = Path(path)
    if (path / META_FILE).is_file():
        return path
    latest = path / LATEST
    if latest.is_file():
        try:
            name = json.loads(latest.read_text(encoding="utf-8"))["checkpoint"]
        except (ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(
                f"{latest} is corrupt ({exc}); point to an epoch-NNNN folder"
            ) from None
        return path / str(name)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist; check the path")
    raise CheckpointError(
        f"{path} holds no checkpoint (no {META_FILE} or {LATEST}); "
        "point to a folder written by ModelCheckpoint"
    )


def read_checkpoint(path: str | Path) -> Checkpoint:
    folder = resolve_checkpoint(path)
    try:
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        model_state = load_file(str(folder / MODEL_FILE))
        training_state = load_file(str(folder / TRAINING_FILE))
    except FileNotFoundError as exc:
        raise CheckpointError(
            f"checkpoint {folder} is incomplete: {exc.filename} is missing"
        ) from None
    except (ValueError, SafetensorError, OSError) as exc:
        raise CheckpointError(
            f"checkpoint {folder} is corrupt ({exc}); use another checkpoint"
        ) from None
    if not isinstance(meta, dict):
        raise CheckpointError(
            f"checkpoint {folder}: {META_FILE} holds {type(meta).__name__}, not an object; "
            "use another checkpoint"
        )
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {folder} has format version {meta.get('format_version')!r:.40}, "
            f"this jiasu reads version {FORMAT_VERSION}"
        )
    return Checkpoint(folder, meta, model_state, training_state)
