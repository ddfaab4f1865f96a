"""One forward pass on made-up inputs: does a model the user brought take this signature?

A model from a ``package.module:factory`` (or a Python object handed to the API) is only
known by running it. Finding out on a small batch of inputs generated from the signature,
before any data is loaded, any export or any training starts, turns a shape or dtype
mismatch deep inside torch into one sentence naming the model, the inputs and the fix.
"""

from __future__ import annotations

import torch
from torch import nn

from jiasu.core.errors import ConfigError, one_line
from jiasu.core.signature import InputSignature

PROBE_BATCH = 2  # not 1: a model that drops or fixes the batch axis shows it at 2


def probe_output(
    model: nn.Module, signature: InputSignature, *, what: str, fix: str
) -> torch.Tensor:
    """`model`'s output (PROBE_BATCH, ...) for inputs generated from `signature`.

    `model` is called positionally with the signature's inputs in order (wrap a keyword
    model or one with several outputs in `jiasu.models.adapter.CallAdapter` first). Runs in
    eval mode without gradients (batch-norm statistics are not touched) and restores the
    model's mode. A model that fails on the inputs, returns something other than a
    tensor, or no row per sample, is a `ConfigError`: ``{what} …; {fix}``.
    """
    inputs = [torch.from_numpy(a) for a in signature.generate(PROBE_BATCH)]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            output = model(*inputs)
    except ConfigError as exc:  # an adapter found no tensor among the outputs, or no such name
        raise ConfigError(f"{what}: {exc}") from None
    except Exception as exc:  # a model that cannot take these inputs fails in its own way
        raise ConfigError(
            f"{what} fails on inputs {signature.describe()} ({one_line(exc, limit=160)}); {fix}"
        ) from None
    finally:
        model.train(was_training)
    if not isinstance(output, torch.Tensor):
        raise ConfigError(
            f"{what} returned {type(output).__name__} for inputs {signature.describe()}, "
            f"not a tensor; {fix}"
        )
    if output.dim() < 1 or output.shape[0] != PROBE_BATCH:
        raise ConfigError(
            f"{what} returned shape {tuple(output.shape)} for a batch of {PROBE_BATCH}; jiasu "
            "needs one output row per sample (the batch axis first)"
        )
    return output
