"""The model registry: names → factories, plus a serialisable `ModelSpec`."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from jiasu.core.errors import ConfigError
from jiasu.core.registry import Registry
from jiasu.core.signature import InputSignature
from jiasu.core.task import Task
from jiasu.models import classifiers

ModelFactory = Callable[..., nn.Module]

MODELS: Registry[ModelFactory] = Registry("model")
MODELS.add("mlp", classifiers.mlp)
MODELS.add("cnn", classifiers.cnn)
MODELS.add("resnet", classifiers.resnet)
MODELS.add("vgg", classifiers.vgg)


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A registry name and its keyword arguments: enough to rebuild the model.

    >>> ModelSpec("mlp", {"hidden": 64}).build().__class__.__name__
    'Sequential'
    """

    name: str
    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def build(self) -> nn.Module:
        return create_model(self.name, **self.kwargs)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kwargs": dict(self.kwargs)}

    def signature(self) -> InputSignature:
        """What a registry model takes: one float32 image (N, 1, 28, 28)."""
        return InputSignature.from_shape(classifiers.IMAGE_SHAPE)

    def task(self) -> Task:
        """A registry model classifies: its `num_classes` argument (or its default)."""
        default = inspect.signature(MODELS.get(self.name)).parameters["num_classes"].default
        return Task("classification", "accuracy", int(self.kwargs.get("num_classes", default)))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelSpec:
        """The spec in a JSON description; a wrong shape or type is a `ConfigError`."""
        if not isinstance(data, Mapping) or not isinstance(data.get("name"), str):
            raise ConfigError(
                f"a model spec must be an object with a 'name' string, got {data!r:.80}; "
                'write it as {"name": "cnn", "kwargs": {...}}'
            )
        kwargs = data.get("kwargs", {})
        if not isinstance(kwargs, Mapping) or not all(isinstance(k, str) for k in kwargs):
            raise ConfigError(
                f"model {data['name']!r}: 'kwargs' must be an object of named arguments, "
                f"got {kwargs!r:.80}"
            )
        return cls(data["name"], dict(kwargs))


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model; unknown names or arguments give a clear `ConfigError`."""
    factory = MODELS.get(name)
    accepted = inspect.signature(factory).parameters
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        names = ", ".join(accepted) or "none"
        raise ConfigError(f"model {name!r} has no argument {unknown[0]!r}; accepted: {names}")
    return factory(**kwargs)
