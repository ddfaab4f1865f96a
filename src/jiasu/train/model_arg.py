"""What `jiasu train --model` accepts: a registry name, a `.keras` file, or a factory.

A registry name becomes a `ModelSpec` (saved as a jiasu model directory). A `.keras`
file or a ``package.module:factory`` returning a Keras model is trained through
`jiasu.integrations.keras` as a torch module (Keras 3, torch backend) and saved back
as ``DIR/model.keras``; a factory returning a torch ``nn.Module`` is trained as it is.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from pathlib import Path
from typing import Any

from torch import nn

from jiasu.core.errors import ConfigError
from jiasu.models import ModelSpec, create_model, save_model_dir

__all__ = ["ExternalModel", "ModelSpec", "model_argument", "save_trained"]

_FACTORY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


@dataclasses.dataclass(frozen=True)
class ExternalModel:
    """A model from outside the registry; `build` makes a fresh, trainable module."""

    name: str  # the argument as given: PATH.keras or package.module:factory

    def build(self) -> nn.Module:
        if self.name.lower().endswith(".keras"):
            from jiasu.integrations.keras import resolve_keras_model

            return resolve_keras_model(self.name)
        module_name, _, attr = self.name.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"cannot import model factory {self.name!r} ({exc})") from None
        model = factory()
        if isinstance(model, nn.Module) and type(model).__module__.split(".")[0] != "keras":
            return model
        from jiasu.integrations.keras import resolve_keras_model

        return resolve_keras_model(model)  # a Keras model built by the factory

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kwargs": {}, "external": True}

    def save(self, module: nn.Module, directory: Path, **meta: Any) -> None:
        from jiasu.integrations.keras import KerasModule, save_keras

        if isinstance(module, KerasModule):
            save_keras(module.eval(), directory / "model.keras")
            return
        raise ConfigError(
            f"--save needs a registry model or a Keras model; {self.name!r} built a "
            f"{type(module).__name__}: save it from Python with safetensors instead"
        )


def model_argument(text: str) -> ModelSpec | ExternalModel:
    """Parse `--model`: unknown registry names get the registry's list of known ones."""
    if text.lower().endswith(".keras"):
        if not Path(text).is_file():
            raise ConfigError(f"Keras model file {text} does not exist; check the path")
        return ExternalModel(text)
    if _FACTORY.match(text):
        return ExternalModel(text)
    create_model(text)  # raises: unknown model, with the known names
    return ModelSpec(text)


def save_trained(spec: ModelSpec | ExternalModel, module: nn.Module, directory: Path,
                 **meta: Any) -> None:  # fmt: skip
    """Save a trained model the way its kind is saved (model directory or .keras)."""
    if isinstance(spec, ModelSpec):
        save_model_dir(directory, module.cpu(), spec, **meta)
    else:
        spec.save(module, directory, **meta)
