"""The gradient pipeline: accumulate, clip, skip non-finite steps, a user's function.

Composed in recipe order like optax's ``chain``: a stage that answers DEFER (accumulate,
until k micro-batches are summed) or SKIP (a NaN) ends the chain for that micro-batch.
The founding document's "gradient sum" is `accumulate`; its ``lambda grads: grads`` is
`grad_fn`.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from typing import Literal

import torch
from torch import nn

from jiasu.core.errors import ConfigError
from jiasu.core.imports import import_attribute, is_qualified_name
from jiasu.core.technique import (
    Applicability,
    Effect,
    Exactness,
    Kind,
    Stage,
    check_int,
    check_number,
    register_technique,
)
from jiasu.train.setup import BoundRun, StepAction, StepHooks, TrainSetup, TrainTechnique

GradFunction = Callable[[list[torch.Tensor]], list[torch.Tensor]]
MAX_ACCUMULATE = 1024  # micro-batches per optimizer step


# --- plain functions ---------------------------------------------------------------------
def gradients(model: nn.Module) -> list[torch.Tensor]:
    """The model's gradients, in parameter order (parameters without one are left out)."""
    return [p.grad for p in model.parameters() if p.grad is not None]


def has_nonfinite_gradient(model: nn.Module) -> bool:
    """True when any gradient holds a NaN or an infinity (one device sync)."""
    grads = gradients(model)
    if not grads:
        return False
    finite = torch.stack([torch.isfinite(g).all() for g in grads]).all()
    return not bool(finite)


def scale_gradients(model: nn.Module, factor: float) -> None:
    grads = gradients(model)
    if grads:
        torch._foreach_mul_(grads, factor)


# --- accumulate ------------------------------------------------------------------------
@register_technique
@dataclasses.dataclass(frozen=True)
class Accumulate(TrainTechnique):
    """Sum or average the gradients of `k` micro-batches, then take one optimizer step.

    With ``reduction="mean"`` (default), k micro-batches of B give the update of one batch
    of k·B (exactly, for models without batch statistics); with "sum", the gradients add
    up, as the founding document's "gradient sum". A short last group of an epoch steps
    with what it has (rescaled to a mean over its own micro-batches).
    """

    name = "accumulate"
    effect = Effect(Stage.TRAIN, Kind.SOFTWARE, Exactness.APPROXIMATE)
    summary = "gradient accumulation over k micro-batches"
    plain_function = "loss / k; loss.backward() k times; optimizer.step()"

    k: int = 2
    reduction: Literal["mean", "sum"] = "mean"

    def __post_init__(self) -> None:
        check_int(self.name, "k", self.k, minimum=1, maximum=MAX_ACCUMULATE)
        if self.reduction not in ("mean", "sum"):
            raise ConfigError(
                f"technique 'accumulate': reduction must be 'mean' or 'sum', got {self.reduction!r}"
            )

    def applies_to(self, setup: TrainSetup) -> Applicability:
        if self.k == 1:
            return Applicability.no("k = 1 accumulates nothing")
        return Applicability.yes()

    def start(self, run: BoundRun) -> StepHooks:
        return _Accumulating(self.k, self.reduction == "mean")


class _Accumulating(StepHooks):
    def __init__(self, k: int, mean: bool) -> None:
        self.k, self.mean = k, mean
        self.pending = 0  # micro-batches summed into .grad since the last step

    def scale_loss(self, loss: torch.Tensor) -> torch.Tensor:
        return loss / self.k if self.mean else loss

    def after_backward(self, model: nn.Module, last_in_epoch: bool) -> StepAction:
        self.pending += 1
        if self.pending < self.k and not last_in_epoch:
            return StepAction.DEFER
        if self.mean and self.pending < self.k:  # short last group: mean over what it has
            scale_gradients(model, self.k / self.pending)
        self.pending = 0
        return StepAction.STEP


# --- clip ------------------------------------------------------------------------------
@register_technique
@dataclasses.dataclass(frozen=True)
class ClipNorm(TrainTechnique):
    """Rescale the gradients so that their global L2 norm is at most `max_norm`."""

    name = "clip_norm"
    effect = Effect(Stage.TRAIN, Kind.SOFTWARE, Exactness.APPROXIMATE)
    summary = "gradient clipping by global norm"
    plain_function = "torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)"

    max_norm: float = 1.0

    def __post_init__(self) -> None:
        check_number(self.name, "max_norm", self.max_norm, above=0, at_most=1e6)

    def start(self, run: BoundRun) -> StepHooks:
        return _Clipping(float(self.max_norm))


class _Clipping(StepHooks):
    def __init__(self, max_norm: float) -> None:
        self.max_norm = max_norm

    def after_backward(self, model: nn.Module, last_in_epoch: bool) -> StepAction:
        torch.nn.utils.clip_grad_norm_(model.parameters(), self.max_norm, foreach=True)
        return StepAction.STEP


# --- skip non-finite -------------------------------------------------------------------
@register_technique
@dataclasses.dataclass(frozen=True)
class SkipNonfinite(TrainTechnique):
    """Skip an optimizer step whose gradients hold a NaN or an infinity.

    The weights and the optimizer state stay as they were; the number of skipped steps
    is kept in the checkpoint. Costs one device synchronisation per step.
    """

    name = "skip_nonfinite"
    effect = Effect(Stage.TRAIN, Kind.SOFTWARE, Exactness.EXACT)
    summary = "skip steps with NaN/inf gradients"
    plain_function = "jiasu.train.techniques.gradients.has_nonfinite_gradient"

    def start(self, run: BoundRun) -> StepHooks:
        return _SkippingNonfinite()


class _SkippingNonfinite(StepHooks):
    def __init__(self) -> None:
        self.skipped = 0

    def after_backward(self, model: nn.Module, last_in_epoch: bool) -> StepAction:
        if has_nonfinite_gradient(model):
            self.skipped += 1
            return StepAction.SKIP
        return StepAction.STEP

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"skipped": torch.tensor(self.skipped)}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        if "skipped" in state:
            self.skipped = int(state["skipped"])


# --- user function ---------------------------------------------------------------------
def resolve_function(spec: str) -> GradFunction:
    """'package.module:function' → the function (how a recipe file names user code).

    The module is imported, which runs its code, as any Python import does: a recipe that
    names a function is code, to be used only from a source the user trusts.
    """
    if not is_qualified_name(spec):
        raise ConfigError(
            f"technique 'grad_fn': fn must look like 'package.module:function', got {spec!r}"
        )
    function = import_attribute(spec, what="technique 'grad_fn':")
    if not callable(function):
        raise ConfigError(f"technique 'grad_fn': {spec!r} is not callable")
    _check_takes_gradients(function, spec)
    return function


def _check_takes_gradients(function: object, name: str) -> None:
    """Refuse, before training, a function that cannot be called as ``fn(grads)``."""
    try:
        signature = inspect.signature(function)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return  # some builtins have no signature: the first step will tell
    try:
        signature.bind([])
    except TypeError as exc:
        raise ConfigError(
            f"technique 'grad_fn': {name!r} cannot be called as fn(grads) ({exc}); give a "
            "function that takes the list of gradients and returns a list of the same length"
        ) from None


@register_technique
@dataclasses.dataclass(frozen=True)
class GradFn(TrainTechnique):
    """Apply a user's function ``fn(grads) -> grads`` to the list of gradients.

    `fn` is a ``'package.module:function'`` string (so recipes stay files) or, from
    Python, a callable. The founding document's ``lambda grads: grads`` is the identity.
    Loading a recipe that names a module imports it, which runs that module's code, as
    any Python import does; the function is checked (importable, callable as
    ``fn(grads)``) when the recipe is loaded, before training starts.
    """

    name = "grad_fn"
    effect = Effect(Stage.TRAIN, Kind.SOFTWARE, Exactness.APPROXIMATE)
    summary = "a user function applied to the gradients"
    plain_function = "grads = fn(grads)"

    fn: str | GradFunction = "jiasu.train.techniques.gradients:identity"

    def __post_init__(self) -> None:
        if isinstance(self.fn, str):
            resolve_function(self.fn)  # fail at recipe load, not in the middle of training
        elif not callable(self.fn):
            raise ConfigError(
                f"technique 'grad_fn': fn must be callable or 'module:function', got {self.fn!r}"
            )
        else:
            _check_takes_gradients(self.fn, getattr(self.fn, "__name__", repr(self.fn)))

    def start(self, run: BoundRun) -> StepHooks:
        fn = resolve_function(self.fn) if isinstance(self.fn, str) else self.fn
        return _ApplyingFunction(fn)


def identity(grads: list[torch.Tensor]) -> list[torch.Tensor]:
    """The founding document's ``lambda grads: grads``."""
    return grads


class _ApplyingFunction(StepHooks):
    def __init__(self, fn: GradFunction) -> None:
        self.fn = fn

    def after_backward(self, model: nn.Module, last_in_epoch: bool) -> StepAction:
        params = [p for p in model.parameters() if p.grad is not None]
        new = self.fn([p.grad for p in params])  # type: ignore[misc]
        if not isinstance(new, list | tuple) or len(new) != len(params):
            got = f"{len(new)} gradients" if isinstance(new, list | tuple) else type(new).__name__
            raise ConfigError(
                f"technique 'grad_fn': fn returned {got} for {len(params)} parameters; "
                "return a list with one gradient per parameter"
            )
        for p, g in zip(params, new, strict=True):
            if not isinstance(g, torch.Tensor) or g.shape != p.shape:
                what = tuple(g.shape) if isinstance(g, torch.Tensor) else type(g).__name__
                raise ConfigError(
                    f"technique 'grad_fn': fn returned a gradient of {what} for a parameter of "
                    f"shape {tuple(p.shape)}; return tensors of the parameters' shapes"
                )
            if g is not p.grad:
                p.grad = g
        return StepAction.STEP
