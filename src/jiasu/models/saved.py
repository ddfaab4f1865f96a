"""Model directories: what `jiasu train --save` writes and later commands load.

Layout::

    DIR/model.safetensors   weights (state_dict), loaded without unpickling anything
    DIR/model.json          {"format": "jiasu-model", "format_version": 2,
                             "model_spec": {"name": ..., "kwargs": {...}}
                                        | {"factory": "package.module:function"},
                             "signature": {...},        # what the model takes
                             "task": {...}, "classes": [...] | null,
                             "recipe": {...} | null, "metrics": {...}}

Format 1 (MNIST only: ``input_shape`` and ``num_classes``) is still read. A model built by
a user's ``package.module:factory`` is rebuilt by importing that module, which runs its
code: `load_model_dir` does so only with ``trust_code=True`` (the user opts in).

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
from jiasu.core.errors import CheckpointError, ConfigError
from jiasu.core.signature import InputSignature
from jiasu.core.task import Task
from jiasu.models.registry import ModelSpec
from jiasu.models.weights import check_weights_fit, load_model_weights

FORMAT = "jiasu-model"
FORMAT_VERSION = 2  # 2: signature, task and classes; factory models
WEIGHTS = "model.safetensors"
META = "model.json"
FOLDER = JiasuFolder("model directory", META, FORMAT, files=(WEIGHTS,))


@dataclass(frozen=True)
class FactoryRef:
    """A model built by calling a user's ``package.module:function`` with no arguments."""

    factory: str

    def to_dict(self) -> dict[str, Any]:
        return {"factory": self.factory}


@dataclass(frozen=True)
class SavedModel:
    """A model read back from a model directory."""

    path: Path
    model: nn.Module  # in eval mode, on the CPU
    spec: ModelSpec | FactoryRef
    signature: InputSignature  # what the model takes
    task: Task
    classes: tuple[str, ...] | None = None  # class names, where the data had them
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, ...] | None:
        """The per-sample shape of a one-float-input model, else None."""
        return self.signature.single_float_shape()

    @property
    def reference(self) -> dict[str, Any]:
        """How to rebuild the module elsewhere (an artifact's torch reference)."""
        if isinstance(self.spec, FactoryRef):
            return {"kind": "factory", "factory": self.spec.factory}
        return {"kind": "registry", "spec": self.spec.to_dict()}


def save_model_dir(
    directory: str | Path,
    model: nn.Module,
    spec: ModelSpec | FactoryRef,
    *,
    signature: InputSignature | None = None,
    task: Task | None = None,
    classes: tuple[str, ...] | None = None,
    recipe: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
) -> Path:
    """Write `model` (built from `spec`) to `directory` atomically; return the path.

    `signature` is what the model takes, `task` what it was trained for, `classes` the
    class names where the data had them (folder names, label values); a registry model
    states its own (`ModelSpec.signature`, `ModelSpec.task`) when they are not given.

    `directory` must be new, empty, or a model directory jiasu wrote (its model.json says
    so); anything else is refused with `ConfigError` and left untouched. Files the user
    added to an existing model directory are carried into the new one
    (`jiasu.core.atomic.atomic_directory`).
    """
    directory = Path(directory)
    if isinstance(spec, ModelSpec):
        signature, task = signature or spec.signature(), task or spec.task()
    elif signature is None or task is None:
        raise ConfigError(
            f"saving a model built by {spec.factory} needs its signature and task; pass both"
        )
    with atomic_directory(directory, FOLDER) as staging:
        state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
        save_file(state, str(staging / WEIGHTS))
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "model_spec": spec.to_dict(),
            "signature": signature.to_dict(),
            "task": task.to_dict(),
            "classes": list(classes) if classes is not None else None,
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


def load_model_dir(directory: str | Path, *, trust_code: bool = False) -> SavedModel:
    """Rebuild the model of a model directory and load its weights (no unpickling).

    A model built by a user's factory is rebuilt by importing the factory's module, only
    with `trust_code` (that runs the module's code); without it, `CheckpointError`.
    """
    directory = Path(directory)
    meta = read_description(
        directory, META, fmt=FORMAT, version=(1, FORMAT_VERSION), what="model directory",
        create="create one with `jiasu train --save DIR`",
    )  # fmt: skip
    described = directory / META
    spec_dict = object_field(meta, "model_spec", described)
    signature, task, classes = _described(meta, described)
    spec: ModelSpec | FactoryRef
    if "factory" in spec_dict:
        spec = FactoryRef(str(spec_dict["factory"]))
    else:
        spec = ModelSpec.from_dict(spec_dict)
    state = _read_weights(directory / WEIGHTS)
    if isinstance(spec, FactoryRef):
        model = _build_factory(spec, directory, trust_code)
    else:
        model = build_for_weights(spec, state, directory / WEIGHTS)
    load_model_weights(model, state, directory / WEIGHTS)
    model.eval()
    return SavedModel(directory, model, spec, signature, task, classes, meta)


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing") from None
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is corrupt ({exc})") from None


def _build_factory(spec: FactoryRef, directory: Path, trust_code: bool) -> nn.Module:
    if not trust_code:
        raise CheckpointError(
            f"{directory} holds a model built by {spec.factory}; rebuilding it imports that "
            "module, which runs its code: pass --trust-code (trust_code=True) if you trust it"
        )
    from jiasu.core.imports import call_factory

    model = call_factory(spec.factory)
    if not isinstance(model, nn.Module):
        raise CheckpointError(
            f"{spec.factory} returned {type(model).__name__}, not a torch nn.Module; "
            f"{directory} cannot be rebuilt"
        )
    return model


def _described(
    meta: Mapping[str, Any], described: Path
) -> tuple[InputSignature, Task, tuple[str, ...] | None]:
    """The signature, task and class names a model.json states (format 1: MNIST's)."""
    if meta.get("format_version") == 1:
        shape = int_tuple_field(meta, "input_shape", described)
        classes = int_field(meta, "num_classes", described)
        task = Task("classification", "accuracy", classes)
        return InputSignature.from_shape(shape), task, None
    try:
        signature = InputSignature.from_dict(object_field(meta, "signature", described))
        task = Task.from_dict(object_field(meta, "task", described))
    except ConfigError as exc:
        raise CheckpointError(f"{described} is invalid ({exc}); save the model again") from None
    names = meta.get("classes")
    if names is not None and not (
        isinstance(names, list) and all(isinstance(n, str) for n in names)
    ):
        raise CheckpointError(f"{described} has invalid classes; save the model again")
    return signature, task, tuple(names) if names is not None else None
