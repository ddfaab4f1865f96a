"""A Keras model on the torch backend as a torch module that jiasu can train and optimize.

On the torch backend a Keras model already is an ``nn.Module``; `KerasModule` adds what
jiasu's loops need: it takes jiasu's (B, C, H, W) images and reshapes them to the Keras
model's input ((B, H, W) or (B, H, W, C)), it passes ``training=self.training`` (Keras
layers such as Dropout read that argument, not torch's train/eval flag), and it lists
only the trainable variables as parameters (a Keras model also holds integer random-seed
state, which no optimizer or weight average should touch).

>>> module = load_keras_as_torch("founding.keras")  # doctest: +SKIP
>>> history = jiasu.fit(module, mnist.train, epochs=5)  # doctest: +SKIP
>>> module.keras_model.save("trained.keras")  # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from jiasu.core.errors import CheckpointError, ConfigError, first_line
from jiasu.core.imports import call_factory, is_qualified_name
from jiasu.data.mnist import INPUT_SHAPE as MNIST_SHAPE
from jiasu.integrations.keras._backend import require_torch_backend

DEFAULT_INPUT_SHAPE = MNIST_SHAPE  # the demo's images, per sample, where none is given
Layout = Literal["same", "reshape", "channels_last"]


class KerasModule(nn.Module):
    """`keras_model` (torch backend) called on jiasu's (B, *input_shape) images; returns logits."""

    def __init__(
        self, keras_model: Any, input_shape: tuple[int, ...] = DEFAULT_INPUT_SHAPE
    ) -> None:
        super().__init__()
        self.keras_model = keras_model
        self.input_shape = tuple(int(d) for d in input_shape)
        self.keras_input_shape = _keras_input_shape(keras_model)
        self.layout: Layout = _layout(self.input_shape, self.keras_input_shape)
        # Keras names its random-seed state by a per-process counter (seed_generator_4, _5…),
        # so that state is left out of state_dict: saved weights then load in another process.
        self.register_state_dict_post_hook(_drop_seed_state)
        self.register_load_state_dict_post_hook(_ignore_missing_seed_state)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.layout == "reshape":  # (B, 1, H, W) → (B, H, W) or (B, H, W, 1)
            assert self.keras_input_shape is not None
            x = x.reshape(x.shape[0], *self.keras_input_shape)
        elif self.layout == "channels_last":  # (B, C, H, W) → (B, H, W, C)
            x = x.permute(0, 2, 3, 1)
        return self.keras_model(x, training=self.training)

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, nn.Parameter]]:
        """Trainable variables only: Keras's seed state and BN statistics are not parameters."""
        for name, parameter in super().named_parameters(prefix, recurse, remove_duplicate):
            if parameter.requires_grad:
                yield name, parameter


SEED_STATE = "seed_generator_state"


def _drop_seed_state(
    module: nn.Module, state: dict[str, Any], prefix: str, local_metadata: Any
) -> None:
    for key in [k for k in state if SEED_STATE in k]:
        del state[key]


def _ignore_missing_seed_state(module: nn.Module, incompatible: Any) -> None:
    incompatible.missing_keys[:] = [k for k in incompatible.missing_keys if SEED_STATE not in k]


def _keras_input_shape(model: Any) -> tuple[int, ...] | None:
    """Per-sample input shape of a built Functional/Sequential model; None when unknown."""
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):  # a subclassed or unbuilt model
        return None
    if not inputs or len(inputs) != 1:
        return None
    shape = tuple(inputs[0].shape[1:])
    if any(d is None for d in shape):
        return None
    return tuple(int(d) for d in shape)


def _layout(jiasu_shape: tuple[int, ...], keras_shape: tuple[int, ...] | None) -> Layout:
    if keras_shape is None or keras_shape == jiasu_shape:
        return "same"
    if len(jiasu_shape) == 3:
        channels, height, width = jiasu_shape
        if keras_shape == (height, width, channels) and channels > 1:
            return "channels_last"
        if channels == 1 and keras_shape in ((height, width), (height, width, 1)):
            return "reshape"
    if math.prod(keras_shape) == math.prod(jiasu_shape) and len(keras_shape) == 1:
        return "reshape"  # a flat (H·W·C,) input
    raise ConfigError(
        f"the Keras model takes inputs of shape {keras_shape}, which jiasu's images "
        f"{jiasu_shape} cannot be reshaped to; build the model for {jiasu_shape} images "
        "(channels first or last)"
    )


def as_torch_module(
    model: Any, *, input_shape: tuple[int, ...] = DEFAULT_INPUT_SHAPE
) -> KerasModule:
    """Wrap a Keras model (torch backend) for `jiasu.fit` and `jiasu.infer.optimize`.

    The module shares the Keras model's variables: training it trains `model`.
    """
    keras = require_torch_backend("training a Keras model with jiasu")
    if isinstance(model, KerasModule):
        return model
    if not isinstance(model, keras.Model):
        raise ConfigError(
            f"expected a keras.Model, got {type(model).__name__}; build it with keras.Sequential "
            "or keras.Model"
        )
    return KerasModule(model, input_shape)


def load_keras_as_torch(
    path: str | os.PathLike[str], *, input_shape: tuple[int, ...] = DEFAULT_INPUT_SHAPE
) -> KerasModule:
    """Load a `.keras` file (``safe_mode``: no Python lambdas run) as a `KerasModule` in eval mode.

    >>> module = load_keras_as_torch("founding.keras")  # doctest: +SKIP
    """
    keras = require_torch_backend("loading a .keras model into jiasu")
    path = Path(path)
    if path.suffix.lower() != ".keras":
        raise ConfigError(f"{path} is not a .keras file; save the model as model.save(PATH.keras)")
    if not path.is_file():
        raise CheckpointError(f"Keras model file {path} does not exist; check the path")
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # zip, JSON, h5 and deserialization errors of every kind
        first = first_line(exc)
        raise CheckpointError(
            f"{path} cannot be loaded as a Keras model ({first}); save it again with "
            "model.save(PATH.keras) under Keras 3"
        ) from None
    return as_torch_module(model, input_shape=input_shape).eval()


def resolve_keras_model(
    spec: Any, *, input_shape: tuple[int, ...] = DEFAULT_INPUT_SHAPE
) -> KerasModule:
    """A keras.Model, a `.keras` path, or ``package.module:factory`` (returning a keras.Model).

    This is what ``jiasu train`` would call for a Keras MODEL argument.
    """
    if isinstance(spec, str | os.PathLike) and str(spec).lower().endswith(".keras"):
        return load_keras_as_torch(spec, input_shape=input_shape).train()
    if isinstance(spec, str) and is_qualified_name(spec):
        return as_torch_module(call_factory(spec), input_shape=input_shape)
    if isinstance(spec, str | os.PathLike):
        raise ConfigError(
            f"Keras model {str(spec)!r} is neither a .keras file nor package.module:factory"
        )
    return as_torch_module(spec, input_shape=input_shape)


def save_keras(module: KerasModule, path: str | os.PathLike[str]) -> Path:
    """Save the (trained) Keras model inside `module` to a `.keras` file, atomically."""
    path = Path(path)
    if path.suffix.lower() != ".keras":
        raise ConfigError(f"{path} must end in .keras (Keras's own format)")
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.stem}.{os.getpid()}.tmp.keras")  # Keras needs the suffix
    try:
        module.keras_model.save(staging)
        os.replace(staging, path)
    finally:
        staging.unlink(missing_ok=True)
    return path


def fit_keras(
    spec: Any,
    data: Any,
    *,
    save: str | os.PathLike[str] | None = None,
    input_shape: tuple[int, ...] = DEFAULT_INPUT_SHAPE,
    **fit_options: Any,
) -> tuple[KerasModule, Any]:
    """`jiasu.fit` for a Keras model given as a model, a `.keras` path or a factory.

    Returns the trained `KerasModule` and the `History`; with `save`, also writes the
    trained model as a `.keras` file (what ``jiasu train MODEL.keras --save OUT.keras``
    would do). `fit_options` are `jiasu.fit`'s (epochs, batch_size, recipe, ...).

    >>> module, history = fit_keras("founding.keras", mnist.train, epochs=5)  # doctest: +SKIP
    """
    from jiasu.train import fit

    module = resolve_keras_model(spec, input_shape=input_shape)
    history = fit(module, data, **fit_options)
    if save is not None:
        save_keras(module.eval(), save)
    return module, history
