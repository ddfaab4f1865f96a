"""The baseline: the PyTorch module as given, eager fp32 under ``torch.no_grad()``.

Also the helpers every torch-based backend uses to save its artifact: the module captured
by ``torch.export`` as a plain graph (`jiasu.infer.backends.torch_program`), so that
loading needs no code; the backend's own runtime settings (channels_last, freezing,
compile) are applied again at load time. Where the capture fails, the artifact holds the
weights and how to rebuild the module instead (a registry model; a copy of the .keras
file; or a ``package.module:factory``, which `load` imports only with ``trust_code``).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from jiasu.core.errors import CheckpointError, ConfigError
from jiasu.core.signature import InputSignature
from jiasu.core.technique import Exactness
from jiasu.infer.backends.base import (
    Backend,
    BuildContext,
    Built,
    Candidate,
    Runner,
    artifact_file,
)
from jiasu.infer.backends.registry import BACKENDS
from jiasu.infer.backends.torch_program import GraphModel, export_graph, load_graph, save_graph
from jiasu.infer.export import NotExportable
from jiasu.models.adapter import adapt, unwrap

WEIGHTS = "model.safetensors"
KERAS_FILE = "model.keras"


def source_module(ctx: BuildContext) -> nn.Module:
    """The source module as its `CallAdapter`: ``forward(*inputs) -> output tensor``."""
    if ctx.source.module is None:
        raise ConfigError("torch backends need a PyTorch model, not an ONNX file")
    return ctx.source.module.eval()


def captured_graph(ctx: BuildContext, fold_bn: bool) -> Any:
    """The source module (its batch norms folded first if `fold_bn`) captured as a graph,
    once per run: `export_graph`'s result, or the reason it failed as a string."""
    if fold_bn not in ctx._graphs:
        try:
            ctx._graphs[fold_bn] = export_graph(ctx.program(fold_bn))
        except NotExportable as exc:
            ctx._graphs[fold_bn] = str(exc)
    return ctx._graphs[fold_bn]


def save_torch(ctx: BuildContext, *, fold_bn: bool = False) -> Any:
    """A `Built.save` for torch backends: the captured graph, else weights and a reference."""

    def save(directory: Path) -> dict[str, Any]:
        graph = captured_graph(ctx, fold_bn)
        if not isinstance(graph, str):
            return {**save_graph(directory, *graph), "bn_folded": fold_bn}
        return _save_reference(ctx, directory, graph)

    return save


def _save_reference(ctx: BuildContext, directory: Path, why: str) -> dict[str, Any]:
    """Weights plus how to rebuild the module, for a model torch.export cannot capture."""
    module, reference = unwrap(source_module(ctx)), ctx.source.reference
    if reference is None:
        raise ConfigError(
            f"this model was passed as a Python object and cannot be captured ({why}), so a "
            "torch artifact cannot rebuild it; pass a model directory, a registry name or "
            "package.module:factory"
        )
    model = dict(reference)
    if model.get("kind") == "keras":  # a copy of the file travels, never its path
        shutil.copyfile(str(model["path"]), directory / KERAS_FILE)
        model = {"kind": "keras", "file": KERAS_FILE}
    state = {k: v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}
    save_file(state, str(directory / WEIGHTS))
    saved = {"weights": WEIGHTS, "model": model, "export_error": why}
    return {**saved, "output": ctx.source.output} if ctx.source.output else saved


def load_torch(
    directory: Path,
    files: Mapping[str, Any],
    signature: InputSignature,
    *,
    trust_code: bool = False,
) -> nn.Module:
    """The module a torch artifact holds, in eval mode, taking the signature's inputs
    positionally and returning one tensor; nothing is unpickled, and a factory is
    imported only with `trust_code`."""
    if "graph" in files:
        return load_graph(directory, files, signature)
    from jiasu.infer.model_source import rebuild_module
    from jiasu.models.weights import load_model_weights

    reference = files.get("model")
    if not isinstance(reference, Mapping):
        raise CheckpointError(f"artifact {directory} says neither its graph nor its model")
    kind = reference.get("kind")
    if kind == "factory" and not trust_code:
        raise CheckpointError(
            f"artifact {directory} rebuilds its model by importing {reference.get('factory')!r}, "
            "which runs code, so it loads only with --trust-code (trust_code=True): pass that "
            "only for a folder you made or trust"
        )
    module: nn.Module
    if kind == "keras":
        from jiasu.integrations.keras import load_keras_as_torch

        keras_file = artifact_file(directory, reference, "file")
        shape = signature.single_float_shape()
        if shape is None:
            raise CheckpointError(f"artifact {directory} holds a Keras model of another input")
        module = load_keras_as_torch(keras_file, input_shape=shape)
    elif kind in ("registry", "factory"):
        module = rebuild_module(reference)
    else:
        raise CheckpointError(f"artifact {directory} names a model jiasu cannot rebuild ({kind!r})")
    path = artifact_file(directory, files, "weights")
    load_model_weights(module, load_file(str(path)), path)
    output = files.get("output")
    return adapt(module.eval(), signature, output if isinstance(output, str) else None)


def eager_runner(module: nn.Module) -> Runner:
    """`module` (positional tensors in, one tensor out) called on numpy arrays."""
    if isinstance(module, GraphModel):
        return module.runner()

    def run(*batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(*map(torch.from_numpy, batch)).float().numpy()

    return run


@BACKENDS.register("torch")
class TorchEager(Backend):
    name = "torch"
    summary = "PyTorch eager fp32 under no_grad: the baseline every candidate is measured against"

    def candidates(self, ctx: BuildContext) -> list[Candidate]:
        return [Candidate("torch-eager", self.name, {}, Exactness.EXACT)]

    def build(self, candidate: Candidate, ctx: BuildContext) -> Built:
        return Built(eager_runner(source_module(ctx)), 0.0, 0.0, save_torch(ctx))

    def load(
        self,
        directory: Path,
        files: Mapping[str, Any],
        settings: Mapping[str, Any],
        signature: InputSignature,
        *,
        trust_code: bool = False,
    ) -> Runner:
        return eager_runner(load_torch(directory, files, signature, trust_code=trust_code))
