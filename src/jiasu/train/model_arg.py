"""What a training session trains: a registry `ModelSpec` or an `ExternalModel`.

A registry model is saved as a jiasu model directory. An `ExternalModel` (a ``.keras`` file
or a ``package.module:factory``, resolved by the train session in `jiasu.app.train`) brings
its own way to build a fresh module and, if it has one, to save the trained module.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import nn

from jiasu.core.errors import ConfigError
from jiasu.models import ModelSpec, save_model_dir
from jiasu.models.saved import FactoryRef

__all__ = ["ExternalModel", "ModelSpec", "save_trained"]


@dataclasses.dataclass(frozen=True)
class ExternalModel:
    """A model from outside the registry; `build` makes a fresh, trainable module.

    `builder` makes the module; `saver` writes a trained module into a folder (None: this
    model cannot be saved by jiasu, and `save` says so).
    """

    name: str  # the argument as given: PATH.keras or package.module:factory
    builder: Callable[[], nn.Module] = dataclasses.field(compare=False, repr=False)
    saver: Callable[[nn.Module, Path], None] | None = dataclasses.field(
        default=None, compare=False, repr=False
    )

    def build(self) -> nn.Module:
        return self.builder()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kwargs": {}, "external": True}

    @property
    def factory(self) -> str | None:
        """The ``package.module:function`` that builds it (None for a .keras file)."""
        return None if self.name.endswith(".keras") else self.name

    def save(self, module: nn.Module, directory: Path, **meta: Any) -> None:
        """Keras models through their saver; a factory's model as a model directory
        naming the factory (rebuilt only with the user's --trust-code)."""
        if self.saver is not None:
            self.saver(module, directory)
            return
        if self.factory is None or meta.get("signature") is None or meta.get("task") is None:
            raise ConfigError(
                f"--save needs a registry model, a Keras model or a factory; {self.name!r} "
                f"built a {type(module).__name__}: save it from Python with safetensors instead"
            )
        save_model_dir(directory, module.cpu(), FactoryRef(self.factory), **meta)


def save_trained(spec: ModelSpec | ExternalModel, module: nn.Module, directory: Path,
                 **meta: Any) -> None:  # fmt: skip
    """Save a trained model the way its kind is saved (model directory or .keras)."""
    if isinstance(spec, ModelSpec):
        save_model_dir(directory, module.cpu(), spec, **meta)
    else:
        spec.save(module, directory, **meta)
