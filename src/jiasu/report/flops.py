"""Count a model's FLOPs per sample with torch's own FLOP counter.

`torch.utils.flop_counter.FlopCounterMode` counts the matrix work (matmul, conv,
attention) that dominates a model's cost, forward and, when training, backward; it
does not count elementwise work. Multiplied by a measured samples/s this gives the
achieved FLOP rate that a report compares with the machine's measured peak.

>>> from torch import nn
>>> flops_per_sample(nn.Linear(10, 4), (10,), training=False)
80.0
>>> flops_per_sample(nn.Linear(10, 4), (10,))  # + weight gradient; inputs need none
160.0
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from jiasu.core.errors import ConfigError


def flops_per_sample(
    model: nn.Module,
    input_shape: Sequence[int],
    *,
    training: bool = True,
    batch_size: int = 2,
) -> float:
    """FLOPs for one sample of shape `input_shape` (no batch dimension).

    With `training=True` the count covers forward and backward of a scalar loss;
    otherwise forward only, under `torch.no_grad()`. The model is copied, so its
    parameters, gradients and train/eval mode are left as they were.
    """
    shape = tuple(int(d) for d in input_shape)
    if not shape or any(d < 1 for d in shape):
        raise ConfigError(f"input_shape {tuple(input_shape)!r} is invalid; use positive sizes")
    probe = copy.deepcopy(model).cpu()
    probe.train(training)
    x = torch.randn(batch_size, *shape)
    counter = FlopCounterMode(display=False)
    with counter:
        if training:
            probe(x).float().sum().backward()
        else:
            with torch.no_grad():
                probe(x)
    return float(counter.get_total_flops()) / batch_size
