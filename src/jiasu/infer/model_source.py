"""Resolving the MODEL argument of `jiasu optimize` into a `ModelSource`.

MODEL may be:

- a model directory written by ``jiasu train --save`` (``model.json`` + ``model.safetensors``);
- an ``.onnx`` file (then only the ONNX Runtime and OpenVINO backends apply);
- a ``.keras`` file (Keras 3 on the torch backend, via `jiasu.integrations.keras`);
- a registry name (``mlp``, ``cnn``) with ``--weights FILE``;
- ``package.module:factory`` with ``--weights FILE``: the module is imported (which runs
  its code, as any Python import does) and the factory is called with no arguments; it
  must return an ``nn.Module``. Only a name the user passes is imported this way: loading
  a folder never imports a module the folder names unless the user opts in.

Weights are safetensors, a jiasu checkpoint folder, or a torch checkpoint read with
``torch.load(weights_only=True)``: plain tensors and containers only, so a file carrying
a pickled payload is refused before any of it runs.
"""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from jiasu.core.errors import CheckpointError, ConfigError, first_line
from jiasu.core.imports import call_factory
from jiasu.core.signature import InputSignature
from jiasu.data.mnist import INPUT_SHAPE as MNIST_SHAPE
from jiasu.infer.backends.base import ModelSource
from jiasu.models import ModelSpec, create_model, load_model_dir
from jiasu.models.argument import parse_model_argument


def resolve_model(
    spec: str,
    *,
    weights: Path | None = None,
    signature: InputSignature | None = None,
    output: str | None = None,
    trust_code: bool = False,
) -> ModelSource:
    """Turn a MODEL argument into a model source; every problem is one clear sentence.

    `signature` is what the model takes (``--input-spec``/``--input-shape``); a model
    directory and an ONNX file say it themselves, and a registry model or factory without
    one is assumed to take MNIST images (1, 28, 28). `output` names the output to verify.
    A model directory of a model built by a user's factory is rebuilt by importing the
    factory only with `trust_code`.
    """
    argument = parse_model_argument(spec, weights=weights)  # one sentence for a bad MODEL
    path = Path(spec)
    if argument.kind == "directory":
        saved = load_model_dir(path, trust_code=trust_code)
        _same_signature(signature, saved.signature, spec)
        source = ModelSource(
            "torch", saved.signature, f"model directory {path}", saved.model,
            reference=saved.reference, output=output, task=saved.task,
        )  # fmt: skip
        check_source(source, spec, given=True)
        return source
    if argument.kind == "keras":  # Keras 3 on the torch backend: a torch module
        from jiasu.integrations.keras import load_keras_as_torch

        shape = _float_shape(signature, spec) or MNIST_SHAPE
        module = load_keras_as_torch(path, input_shape=shape)
        keras_ref = {"kind": "keras", "path": str(path.resolve())}
        keras_sig = InputSignature.from_shape(module.input_shape)
        return ModelSource(
            "torch", keras_sig, f"Keras model {path}", module, reference=keras_ref,
            output=output,
        )  # fmt: skip
    if argument.kind == "onnx":
        from jiasu.models.onnx_file import read_onnx_signature

        own = read_onnx_signature(path)
        if signature is not None:  # the user's names and sizes for the file's inputs
            own = _onnx_with(own, signature, spec)
        return ModelSource("onnx", own, f"ONNX file {path}", onnx_path=path)
    if argument.kind in ("registry", "factory"):
        if weights is None:
            raise ConfigError(
                f"MODEL {spec!r} needs its trained weights; pass --weights FILE "
                "(.safetensors or a torch checkpoint)"
            )
        ref: dict[str, Any] = (
            {"kind": "registry", "spec": ModelSpec(spec).to_dict()}
            if argument.kind == "registry"
            else {"kind": "factory", "factory": spec}
        )
        net = rebuild_module(ref)
        from jiasu.models.weights import load_model_weights

        load_model_weights(net, read_weights(weights), weights)
        source = ModelSource(
            "torch", signature or InputSignature.from_shape(MNIST_SHAPE),
            f"{spec} with weights {weights}", net.eval(), reference=ref, output=output,
        )  # fmt: skip
        check_source(source, spec, given=signature is not None)
        return source
    raise AssertionError(f"parse_model_argument returned kind {argument.kind!r}")


def check_source(source: ModelSource, what: str, *, given: bool) -> None:
    """One forward pass of a torch source on made-up inputs of its signature: a model for
    other inputs, or one with no tensor among its outputs, is one sentence here, not a
    traceback from inside the model during optimize."""
    from jiasu.models.probe import probe_output

    fix = (
        "pass what it takes with --input-spec name:dtype[B,...] or --input-shape C,H,W"
        if not given
        else "check --input-spec / --input-shape: they describe one call's inputs"
    )
    label = f"MODEL {what!r}" + ("" if given else " (assumed to take MNIST images)")
    if source.module is not None:
        probe_output(source.module, source.signature, what=label, fix=fix)


def _same_signature(given: InputSignature | None, own: InputSignature, spec: str) -> None:
    """Refuse a --input-spec/--input-shape that a model directory's own signature contradicts:
    another number of inputs, another dtype, or another size on an axis both fix (a named
    axis such as B or S matches any size)."""
    if given is not None and not _compatible(given, own):
        raise ConfigError(
            f"{spec} takes {own.describe()}, but --input-spec/--input-shape says "
            f"{given.describe()}; drop the option (the model directory says what it takes)"
        )


def _compatible(given: InputSignature, own: InputSignature) -> bool:
    if len(given.inputs) != len(own.inputs):
        return False
    for mine, theirs in zip(given.inputs, own.inputs, strict=True):
        if mine.dtype != theirs.dtype or len(mine.shape) != len(theirs.shape):
            return False
        for a, b in zip(mine.shape, theirs.shape, strict=True):
            if isinstance(a, int) and isinstance(b, int) and a != b:
                return False
    return True


def _float_shape(signature: InputSignature | None, spec: str) -> tuple[int, ...] | None:
    if signature is None:
        return None
    shape = signature.single_float_shape()
    if shape is None:
        raise ConfigError(
            f"{spec} is a Keras model of one float input; give its shape with --input-shape"
        )
    return shape


def _onnx_with(own: InputSignature, given: InputSignature, spec: str) -> InputSignature:
    """The file's signature with the user's sizes where the file leaves axes open."""
    if len(given.inputs) != len(own.inputs):
        raise ConfigError(
            f"{spec} takes {len(own.inputs)} input(s) ({own.describe()}), but --input-spec "
            f"names {len(given.inputs)}; describe each of its inputs"
        )
    for mine, theirs in zip(own.inputs, given.inputs, strict=True):
        fixed = [
            (a, b) for a, b in zip(mine.shape, theirs.shape, strict=False) if isinstance(a, int)
        ]
        if len(mine.shape) != len(theirs.shape) or any(a != b for a, b in fixed):
            raise ConfigError(
                f"{spec} input {mine.name!r} is {mine.describe()}, which --input-spec "
                f"{theirs.describe()} does not fit; match the file's input"
            )
    return InputSignature(
        tuple(
            dataclasses.replace(theirs, name=mine.name, dtype=mine.dtype)
            for mine, theirs in zip(own.inputs, given.inputs, strict=True)
        ),
        own.call,
    )


def rebuild_module(reference: Mapping[str, Any]) -> nn.Module:
    """Build the (untrained) module a reference describes: a registry spec or a factory.

    A factory is imported and called: callers reading a reference from a file must have
    the user's opt-in (``trust_code``) first.
    """
    kind = reference.get("kind")
    if kind == "registry":
        spec = ModelSpec.from_dict(reference["spec"])
        return create_model(spec.name, **dict(spec.kwargs))
    if kind == "factory":
        target = str(reference["factory"])
        model = call_factory(target)
        if not isinstance(model, nn.Module):
            raise ConfigError(
                f"factory {target!r} returned {type(model).__name__}, not a torch nn.Module"
            )
        return model.eval()
    raise CheckpointError(f"model reference {dict(reference)!r} is not one jiasu can rebuild")


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """A state_dict from safetensors, a jiasu checkpoint folder, or a weights-only torch file."""
    if path.is_dir():
        from jiasu.train.checkpoint import read_checkpoint

        return read_checkpoint(path).model_state
    if not path.exists():
        raise CheckpointError(f"weights file {path} does not exist; check the path")
    if not path.is_file():
        raise CheckpointError(
            f"weights {path} is not a regular file; pass a .safetensors file, a checkpoint "
            "folder or a torch weights file"
        )
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"{path} is not a readable safetensors file ({exc})") from None
    try:
        # weights_only=True: the unpickler accepts tensors and plain containers only, so a
        # file carrying code (a __reduce__ payload) is rejected before anything executes.
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as exc:
        first = first_line(exc, limit=120)
        raise CheckpointError(
            f"{path} is not a plain weights file and was not loaded ({first}); "
            "save weights with safetensors or torch.save(model.state_dict())"
        ) from None
    return _state_dict(data, path)


def _state_dict(data: object, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(data, Mapping):
        for key in ("state_dict", "model_state_dict", "model"):
            inner = data.get(key)
            if isinstance(inner, Mapping):
                data = inner
                break
    if not isinstance(data, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in data.items()
    ):
        raise CheckpointError(
            f"{path} does not hold a state_dict (a mapping of names to tensors); "
            "save it with torch.save(model.state_dict())"
        )
    return dict(data)
