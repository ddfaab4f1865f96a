"""Detect a run that has diverged: weights or losses that are NaN or infinite.

Checked once per epoch (one device synchronisation), so a diverged run stops with
one sentence instead of training on and saving a model that predicts nothing.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from jiasu.core.errors import TrainingDivergedError


def nonfinite_tensors(model: nn.Module) -> list[str]:
    """Names of the model's floating-point parameters and buffers holding NaN or infinity."""
    named = [
        (name, t)
        for name, t in (*model.named_parameters(), *model.named_buffers())
        if t.is_floating_point() and t.numel()
    ]
    if not named:
        return []
    finite = torch.stack([torch.isfinite(t.detach()).all() for _, t in named]).tolist()
    return [name for (name, _), ok in zip(named, finite, strict=True) if not ok]


def check_epoch_finite(
    model: nn.Module, epoch: int, train_loss: float, val_loss: float | None, lr: float
) -> None:
    """Raise `TrainingDivergedError` when the weights after `epoch`, or the validation
    loss they give, are NaN or infinite.

    A non-finite training loss alone is not an error: with finite weights it means some
    steps were skipped (``skip_nonfinite``, fp16 loss scaling) and the run recovered.
    """
    bad = nonfinite_tensors(model)
    if bad:
        what = f"{len(bad)} weight tensors hold NaN or infinity (first: {bad[0]})"
    elif val_loss is not None and not math.isfinite(val_loss):
        what = f"the validation loss is {val_loss}"
    else:
        return
    raise TrainingDivergedError(
        f"training diverged in epoch {epoch}: {what}, training loss {train_loss:.4g}; "
        f"lower the learning rate (it was {lr:g}) or add the clip_norm or skip_nonfinite "
        "technique"
    )
