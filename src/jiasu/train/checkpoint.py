"""Resumable checkpoints: weights in safetensors, everything else in JSON.

Layout of a checkpoint folder (``DIR/epoch-0003``)::

    model.safetensors     model weights (state_dict)
    training.safetensors  optimizer tensors, RNG states, technique tensors
    checkpoint.json       epoch, history, optimizer hyper-parameters, callback states,
                          model spec, recipe, format version

Nothing here unpickles: safetensors holds only tensors, JSON only plain values.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from jiasu.core.atomic import atomic_directory, atomic_write_text
from jiasu.core.errors import CheckpointError

FORMAT_VERSION = 1
LATEST = "latest.json"
MODEL_FILE = "model.safetensors"
TRAINING_FILE = "training.safetensors"
META_FILE = "checkpoint.json"


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
    """Write ``directory/epoch-NNNN`` atomically, point ``latest.json`` at it, prune old ones."""
    directory.mkdir(parents=True, exist_ok=True)
    name = f"epoch-{epoch:04d}"
    with atomic_directory(directory / name) as staging:
        save_file(_contiguous_cpu(model_state), str(staging / MODEL_FILE))
        save_file(_contiguous_cpu(training_state), str(staging / TRAINING_FILE))
        full_meta = {"format_version": FORMAT_VERSION, "epoch": epoch, **meta}
        (staging / META_FILE).write_text(json.dumps(full_meta, indent=2), encoding="utf-8")
    atomic_write_text(directory / LATEST, json.dumps({"checkpoint": name, "epoch": epoch}) + "\n")
    _prune(directory, keep=keep, current=name)
    return directory / name


def _contiguous_cpu(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors refuses shared or non-contiguous storage; clone keeps tied weights apart.
    return {k: v.detach().cpu().contiguous().clone() for k, v in state.items()}


def _prune(directory: Path, *, keep: int, current: str) -> None:
    checkpoints = sorted(p for p in directory.glob("epoch-*") if p.is_dir())
    for old in checkpoints[:-keep]:
        if old.name != current:
            shutil.rmtree(old, ignore_errors=True)


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
    if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {folder} has format version {meta.get('format_version')!r}, "
            f"this jiasu reads version {FORMAT_VERSION}"
        )
    return Checkpoint(folder, meta, model_state, training_state)


def load_model_weights(
    model: torch.nn.Module, state: Mapping[str, torch.Tensor], source: Path
) -> None:
    """Load weights strictly; any mismatch becomes one sentence naming the first difference."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    reshaped = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or reshaped:
        if reshaped:
            key = reshaped[0]
            detail = (
                f"{key} has shape {tuple(state[key].shape)} there but "
                f"{tuple(expected[key].shape)} in the model"
            )
        else:
            detail = (
                f"missing: {', '.join(missing[:3]) or 'none'}; "
                f"unexpected: {', '.join(unexpected[:3]) or 'none'}"
            )
        raise CheckpointError(
            f"weights in {source} do not match the model ({detail}); "
            "build the same model that was saved"
        )
    model.load_state_dict(dict(state), strict=True)
