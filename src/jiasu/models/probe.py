"""One forward pass on a batch of zeros: does a model the user brought take this input?

A model from a ``package.module:factory`` is only known by running it. Finding out on a
batch of zeros, before any data is loaded or any training starts, turns a shape mismatch
deep inside torch into one sentence naming the model, the input and the fix.
"""

from __future__ import annotations

import torch
from torch import nn

from jiasu.core.errors import ConfigError, one_line


def probe_output(
    model: nn.Module, batch_shape: tuple[int, ...], *, what: str, fix: str
) -> torch.Tensor:
    """`model`'s output for a float32 batch of zeros of `batch_shape`.

    Runs in eval mode without gradients (batch-norm statistics are not touched) and
    restores the model's mode. A model that fails on the batch, or returns something
    other than a tensor, is a `ConfigError`: ``{what} …; {fix}``.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            output = model(torch.zeros(batch_shape))
    except Exception as exc:  # a model that cannot take this input fails in its own way
        raise ConfigError(
            f"{what} fails on a batch of shape {batch_shape} ({one_line(exc, limit=160)}); {fix}"
        ) from exc
    finally:
        model.train(was_training)
    if not isinstance(output, torch.Tensor):
        raise ConfigError(
            f"{what} returned {type(output).__name__} for a batch of shape {batch_shape}, "
            f"not a tensor of logits; {fix}"
        )
    return output
