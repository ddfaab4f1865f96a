"""PyTorch, tuned for inference: inference_mode, batch-norm folding, channels_last, freezing.

- ``inference_mode`` skips autograd's version counters and view tracking;
- batch-norm folding merges each eval-mode BatchNorm into the convolution before it
  (``w' = w·γ/σ``, ``b' = (b−μ)·γ/σ + β``), one kernel fewer per block;
- ``channels_last`` stores activations NHWC, the layout oneDNN's convolutions prefer;
- ``freeze`` traces the model with TorchScript, freezes it (weights become constants)
  and runs ``optimize_for_inference``, which removes most of eager mode's per-op overhead.

All are exact up to floating-point reassociation.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from jiasu.core.signature import InputSignature
from jiasu.core.technique import Exactness
from jiasu.infer.backends.base import Backend, BuildContext, Built, Candidate, Runner, timed
from jiasu.infer.backends.registry import BACKENDS
from jiasu.infer.backends.torch_eager import load_torch, save_torch, source_module


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """A copy of eval-mode `module` with every Conv→BatchNorm pair folded into one Conv.

    Uses torch.fx to find the pairs, so the model must be symbolically traceable.

    >>> from jiasu.models import create_model
    >>> folded = fold_batchnorm(create_model("cnn").eval())
    >>> any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    False
    """
    from torch.fx.experimental.optimization import fuse

    from jiasu.models.adapter import CallAdapter

    if isinstance(module, CallAdapter):  # fx traces the model inside, not the *inputs call
        return module.replaced(fold_batchnorm(module.module))
    return fuse(copy.deepcopy(module).eval(), inplace=True)


def has_conv(module: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in module.modules())


def foldable(module: nn.Module) -> bool:
    """Whether torch.fx can trace the model, which batch-norm folding needs (a model with
    data-dependent control flow, such as transformers' ResNet, cannot be)."""
    from jiasu.models.adapter import CallAdapter

    inner = module.module if isinstance(module, CallAdapter) else module
    try:
        torch.fx.symbolic_trace(inner)
        return True
    except Exception:
        return False


def optimize_module(
    module: nn.Module, settings: Mapping[str, Any], signature: InputSignature
) -> nn.Module:
    """Apply the settings' transformations to a copy of `module` (the plain-function form)."""
    out = fold_batchnorm(module) if settings.get("fold_bn") else copy.deepcopy(module).eval()
    if settings.get("channels_last"):
        out = out.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    if settings.get("freeze"):
        example = tuple(torch.from_numpy(a) for a in signature.generate(1))
        # TorchScript is deprecated in torch 2.9+ but still the lowest-overhead way to run a
        # small model from Python; the notices are ours to track, not the user's.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            traced = torch.jit.trace(out, example)
            out = torch.jit.optimize_for_inference(torch.jit.freeze(traced.eval()))
    return out


def optimized_runner(module: nn.Module, settings: Mapping[str, Any]) -> Runner:
    channels_last = bool(settings.get("channels_last"))

    def tensor(array: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(array)
        if channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)  # (B, C, H, W) stored NHWC
        return x

    def run(*batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(*map(tensor, batch)).float().contiguous().numpy()

    return run


@BACKENDS.register("torch_optimized")
class TorchOptimized(Backend):
    name = "torch_optimized"
    summary = "PyTorch with inference_mode, BN folding, channels_last and TorchScript freezing"

    def candidates(self, ctx: BuildContext) -> list[Candidate]:
        shape = ctx.source.input_shape
        conv = has_conv(source_module(ctx)) and shape is not None and len(shape) == 3
        fold = conv and foldable(source_module(ctx))
        base = {"inference_mode": True, "fold_bn": fold, "channels_last": conv}
        # Without folding or another layout it runs eager's kernels on eager's inputs (a
        # transformer: 15-19 s of verification saved on ViT-B/16).
        same = None if fold or conv else "torch-eager"
        settings = {**base, "freeze": False}
        out = [
            Candidate("torch-optimized", self.name, settings, Exactness.EXACT, same_outputs_as=same)
        ]
        if not ctx.large:  # tracing and freezing a large model costs minutes, for little
            out.append(
                Candidate("torch-frozen", self.name, {**base, "freeze": True}, Exactness.EXACT)
            )
        return out

    def build(self, candidate: Candidate, ctx: BuildContext) -> Built:
        module, seconds = timed(
            lambda: optimize_module(source_module(ctx), candidate.settings, ctx.signature)
        )
        save = save_torch(ctx, fold_bn=bool(candidate.settings.get("fold_bn")))
        return Built(optimized_runner(module, candidate.settings), seconds, 0.0, save)

    def load(
        self,
        directory: Path,
        files: Mapping[str, Any],
        settings: Mapping[str, Any],
        signature: InputSignature,
        *,
        trust_code: bool = False,
    ) -> Runner:
        module = load_torch(directory, files, signature, trust_code=trust_code)
        # A saved graph was captured after folding (files["bn_folded"]); a graph holds no
        # modules to fold, so the other settings are what is applied again.
        redo = {**settings, "fold_bn": settings.get("fold_bn") and "graph" not in files}
        return optimized_runner(optimize_module(module, redo, signature), settings)
