"""Model directories: what `jiasu train --save` writes and later commands load.

Layout::

    DIR/model.safetensors   weights (state_dict), loaded without unpickling anything
    DIR/model.json          {"format": "jiasu-model", "format_version": 1,
                             "model_spec": {"name": ..., "kwargs": {...}},
                             "input_shape": [1, 28, 28], "num_classes": 10,
                             "recipe": {...} | null, "metrics": {...}}

The folder is written under a temporary name and swapped into place, so a reader
never sees half a model; an existing folder is replaced only if jiasu wrote it, and only
once the new one is complete.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from jiasu.core.atomic import JiasuFolder, atomic_directory
from jiasu.core.description import int_field, int_tuple_field, object_field, read_description
from jiasu.core.errors import CheckpointError
from jiasu.models.registry import ModelSpec
from jiasu.models.weights import check_weights_fit, load_model_weights

FORMAT = "jiasu-model"
FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
META = "model.json"
FOLDER = JiasuFolder("model directory", META, FORMAT, files=(WEIGHTS,))


@dataclass(frozen=True)
class SavedModel:
    """A model read back from a model directory."""

    path: Path
    model: nn.Module  # in eval mode, on the CPU
    spec: ModelSpec
    input_shape: tuple[int, ...]  # per sample, e.g. (1, 28, 28)
    meta: Mapping[str, Any] = field(default_factory=dict)


def save_model_dir(
    directory: str | Path,
    model: nn.Module,
    spec: ModelSpec,
    *,
    input_shape: tuple[int, ...] = (1, 28, 28),
    num_classes: int = 10,
    recipe: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
) -> Path:
    """Write `model` (built from `spec`) to `directory` atomically; return the path.

    `directory` must be new, empty, or a model directory jiasu wrote (its model.json says
    so); anything else is refused with `ConfigError` and left untouched. Files the user
    added to an existing model directory are carried into the new one
    (`jiasu.core.atomic.atomic_directory`).
    """
    directory = Path(directory)
    with atomic_directory(directory, FOLDER) as staging:
        state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
        save_file(state, str(staging / WEIGHTS))
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "model_spec": spec.to_dict(),
            "input_shape": list(input_shape),
            "num_classes": num_classes,
            "recipe": dict(recipe) if recipe else None,
            "metrics": dict(metrics or {}),
        }
        (staging / META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return directory


def build_for_weights(
    spec: ModelSpec, state: Mapping[str, torch.Tensor], source: Path
) -> nn.Module:
    """Build `spec` only once its shapes match the weights in `state` (read from `source`).

    The spec is first built on the meta device, which allocates nothing, and compared
    name by name and shape by shape with the weights: a description whose arguments ask
    for a bigger model than its weights file holds is refused before any allocation.
    """
    with torch.device("meta"):
        skeleton = spec.build()
    check_weights_fit(skeleton, state, source)
    return spec.build()


def is_model_dir(path: str | Path) -> bool:
    return (Path(path) / META).is_file()


def load_model_dir(directory: str | Path) -> SavedModel:
    """Rebuild the model of a model directory and load its weights (no unpickling)."""
    directory = Path(directory)
    meta = read_description(
        directory, META, fmt=FORMAT, version=FORMAT_VERSION, what="model directory",
        create="create one with `jiasu train --save DIR`",
    )  # fmt: skip
    described = directory / META
    spec_dict = object_field(meta, "model_spec", described)
    input_shape = int_tuple_field(meta, "input_shape", described, default=[1, 28, 28])
    int_field(meta, "num_classes", described, default=10)
    try:
        state = load_file(str(directory / WEIGHTS))
    except FileNotFoundError:
        raise CheckpointError(f"{directory / WEIGHTS} is missing") from None
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{directory / WEIGHTS} is corrupt ({exc})") from None
    spec = ModelSpec.from_dict(spec_dict)
    model = build_for_weights(spec, state, directory / WEIGHTS)
    load_model_weights(model, state, directory / WEIGHTS)
    model.eval()
    return SavedModel(directory, model, spec, input_shape, meta)
