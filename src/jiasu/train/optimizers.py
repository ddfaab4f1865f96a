"""Optimizers by name. The founding document names Adam, Nadam and AdaMax."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch

from jiasu.core.errors import ConfigError
from jiasu.core.registry import Registry

OptimizerFactory = Callable[..., torch.optim.Optimizer]

OPTIMIZERS: Registry[OptimizerFactory] = Registry("optimizer")
OPTIMIZERS.add("adam", torch.optim.Adam)
OPTIMIZERS.add("adamw", torch.optim.AdamW)
OPTIMIZERS.add("nadam", torch.optim.NAdam)
OPTIMIZERS.add("adamax", torch.optim.Adamax)
OPTIMIZERS.add("sgd", torch.optim.SGD)


def create_optimizer(
    name: str,
    params: Iterable[torch.nn.Parameter],
    *,
    lr: float,
    options: Mapping[str, Any] | None = None,
) -> torch.optim.Optimizer:
    """Build optimizer `name` (case-insensitive) with learning rate `lr`.

    >>> opt = create_optimizer("adam", torch.nn.Linear(2, 2).parameters(), lr=1e-3)
    """
    if not isinstance(lr, int | float) or isinstance(lr, bool) or not lr > 0:
        raise ConfigError(f"learning rate must be a positive number, got {lr!r}")
    factory = OPTIMIZERS.get(name.lower())
    extra = dict(options or {})
    if name.lower() == "sgd":
        extra.setdefault("momentum", 0.9)
    try:
        return factory(params, lr=float(lr), **extra)
    except (TypeError, RuntimeError, ValueError) as exc:
        raise ConfigError(f"optimizer {name!r} rejected options {extra}: {exc}") from None
