"""What `jiasu train --model` accepts: a registry name, a `.keras` file, or a factory.

A registry name becomes a `ModelSpec` (saved as a jiasu model directory). A `.keras`
file or a ``package.module:factory`` returning a Keras model is trained through
`jiasu.integrations.keras` as a torch module (Keras 3, torch backend) and saved back
as ``DIR/model.keras``; a factory returning a torch ``nn.Module`` is trained as it is.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from torch import nn

from jiasu.core.errors import ConfigError
from jiasu.core.imports import call_factory, is_qualified_name
from jiasu.models import ModelSpec, create_model, save_model_dir
from jiasu.models.probe import probe_output

__all__ = ["ExternalModel", "ModelSpec", "model_argument", "save_trained"]

# What MNIST training feeds a model and expects back: two images (a batch norm needs more
# than one sample) of (1, 28, 28), and logits for the 10 digits.
MNIST_BATCH = (2, 1, 28, 28)
MNIST_CLASSES = 10


@dataclasses.dataclass(frozen=True)
class ExternalModel:
    """A model from outside the registry; `build` makes a fresh, trainable module."""

    name: str  # the argument as given: PATH.keras or package.module:factory

    def build(self) -> nn.Module:
        if self.name.lower().endswith(".keras"):
            from jiasu.integrations.keras import resolve_keras_model

            return resolve_keras_model(self.name)
        model = call_factory(self.name)
        from_keras = type(model).__module__.split(".")[0] == "keras"
        if isinstance(model, nn.Module) and not from_keras:
            return model
        if not from_keras:
            raise ConfigError(
                f"model factory {self.name!r} returned {type(model).__name__}, not a torch "
                "nn.Module or a Keras model; return the model from the factory"
            )
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
            problem = "is a folder, not a file" if Path(text).is_dir() else "does not exist"
            raise ConfigError(f"Keras model file {text} {problem}; check the path")
    elif not is_qualified_name(text):
        create_model(text)  # raises: unknown model, with the known names
        return ModelSpec(text)
    external = ExternalModel(text)
    check_takes_mnist(external.build(), text)
    return external


def check_takes_mnist(module: nn.Module, name: str) -> None:
    """One forward pass on a batch of MNIST images: the logits must be (2, 10).

    A model for other inputs or another number of classes fails here, in one sentence,
    before any data is loaded or any training starts.
    """
    fix = (
        "MNIST training needs a model that takes (N, 1, 28, 28) images and returns "
        f"(N, {MNIST_CLASSES}) logits"
    )
    what = f"model {name!r}"
    output = probe_output(module, MNIST_BATCH, what=what, fix=fix)
    expected = (MNIST_BATCH[0], MNIST_CLASSES)
    if tuple(output.shape) != expected:
        raise ConfigError(
            f"{what} returned shape {tuple(output.shape)} for a batch of shape {MNIST_BATCH}, "
            f"not {expected}; {fix}"
        )


def save_trained(spec: ModelSpec | ExternalModel, module: nn.Module, directory: Path,
                 **meta: Any) -> None:  # fmt: skip
    """Save a trained model the way its kind is saved (model directory or .keras)."""
    if isinstance(spec, ModelSpec):
        save_model_dir(directory, module.cpu(), spec, **meta)
    else:
        spec.save(module, directory, **meta)
