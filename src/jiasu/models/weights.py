"""Loading a state_dict into a model: strictly, with one sentence for any mismatch.

Used by model directories, checkpoints and the inference backends alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from jiasu.core.errors import CheckpointError


def load_model_weights(
    model: torch.nn.Module, state: Mapping[str, torch.Tensor], source: Path
) -> None:
    """Load weights strictly; any mismatch becomes one sentence naming the first difference."""
    check_weights_fit(model, state, source)
    model.load_state_dict(dict(state), strict=True)


def check_weights_fit(
    model: torch.nn.Module, state: Mapping[str, torch.Tensor], source: Path
) -> None:
    """Raise `CheckpointError` unless `state` has exactly the names and shapes of `model`'s.

    Only shapes are read, so `model` may be a skeleton built on the meta device: a
    description can then be checked against its weights before the real model is built.
    """
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    reshaped = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or reshaped:
        if reshaped:
            key = reshaped[0]
            detail = (
                f"{key} has shape {tuple(state[key].shape)} there but "
                f"{tuple(expected[key].shape)} in the model"
            )
        else:
            detail = (
                f"missing: {', '.join(missing[:3]) or 'none'}; "
                f"unexpected: {', '.join(unexpected[:3]) or 'none'}"
            )
        raise CheckpointError(
            f"weights in {source} do not match the model ({detail}); "
            "build the same model that was saved"
        )
