"""The baseline: the PyTorch module as given, eager fp32 under ``torch.no_grad()``.

Also the helpers every torch-based backend uses to save its artifact: the source model's
weights as safetensors plus how to rebuild the module; the backend's own transformation
(BN folding, compile) is applied again at load time from its recorded settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from jiasu.core.errors import ConfigError
from jiasu.core.technique import Exactness
from jiasu.infer.backends.base import Backend, BuildContext, Built, Candidate, Runner
from jiasu.infer.backends.registry import BACKENDS

WEIGHTS = "model.safetensors"


def source_module(ctx: BuildContext) -> nn.Module:
    if ctx.source.module is None:
        raise ConfigError("torch backends need a PyTorch model, not an ONNX file")
    return ctx.source.module.eval()


def save_torch(ctx: BuildContext) -> Any:
    """A `Built.save` for torch backends: weights plus the recipe to rebuild the module."""
    module, reference = source_module(ctx), ctx.source.reference

    def save(directory: Path) -> dict[str, Any]:
        if reference is None:
            raise ConfigError(
                "this model was passed as a Python object, so a torch artifact cannot rebuild "
                "it; pass a model directory, a registry name or package.module:factory"
            )
        state = {k: v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}
        save_file(state, str(directory / WEIGHTS))
        return {"weights": WEIGHTS, "model": dict(reference)}

    return save


def load_torch(directory: Path, files: Mapping[str, Any]) -> nn.Module:
    """Rebuild the module a torch artifact describes and load its weights (no unpickling)."""
    from jiasu.infer.model_source import rebuild_module
    from jiasu.train.checkpoint import load_model_weights

    module = rebuild_module(files["model"])
    path = directory / str(files["weights"])
    load_model_weights(module, load_file(str(path)), path)
    return module.eval()


def eager_runner(module: nn.Module) -> Runner:
    def run(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.from_numpy(batch)).float().numpy()

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
        input_shape: tuple[int, ...],
    ) -> Runner:
        return eager_runner(load_torch(directory, files))
