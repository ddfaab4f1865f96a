"""jiasu's gradient pipeline, threads and precision inside Keras's own ``model.fit``.

Written with Keras's public API and `keras.ops` only, so it runs on any Keras 3 backend:

- ``accumulate(k)`` and ``ema(decay)`` are Keras 3 optimizer options
  (``gradient_accumulation_steps``, ``use_ema`` / ``ema_momentum``): `KerasAcceleration.optimizer`
  returns a copy of the user's optimizer with them set;
- ``lookahead(every, alpha)`` is the `Lookahead` callback (the same update as
  `jiasu.train.techniques.averaging.lookahead_update`, in `keras.ops`);
- threads and bf16 precision are the `Threads` and `Precision` callbacks.

>>> acc = KerasAcceleration(accumulate=2, ema_decay=0.999, lookahead_every=5)  # doctest: +SKIP
>>> model.compile(optimizer=acc.optimizer(keras.optimizers.Adam()), loss=...)  # doctest: +SKIP
>>> model.fit(x, y, callbacks=acc.callbacks())  # doctest: +SKIP

Differences from `jiasu.fit` (both documented in docs/keras.md): Keras accumulates with a
mean only, carries a short last group over to the next epoch, and updates the moving average
after every micro-batch; it validates with the live weights, and ends training holding the
average, as jiasu does.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from jiasu.core.errors import ConfigError
from jiasu.core.recipe import Recipe
from jiasu.integrations.keras._backend import backend, import_keras
from jiasu.train.techniques import Accumulate, Ema, Lookahead, MixedPrecision, Threads
from jiasu.train.techniques.precision import cpu_has_bf16_units

keras = import_keras()
_Callback: Any = keras.callbacks.Callback  # a plain name, so type checkers accept it as a base

Precision = Literal["fp32", "bf16"]


@dataclasses.dataclass(frozen=True)
class KerasAcceleration:
    """What to change in a Keras ``fit``; validated like the matching jiasu techniques.

    `accumulate`: micro-batches per optimizer step (1: none); `ema_decay`: moving average of
    the weights (None: none); `lookahead_every` / `lookahead_alpha`: Lookahead (None: none);
    `threads`: intra-op threads (torch backend; None: leave as is); `precision`: "bf16"
    computes layers in bfloat16 with float32 weights (Keras's "mixed_bfloat16" policy).
    """

    accumulate: int = 1
    ema_decay: float | None = None
    lookahead_every: int | None = None
    lookahead_alpha: float = 0.5
    threads: int | None = None
    precision: Precision = "fp32"

    def __post_init__(self) -> None:
        Accumulate(k=self.accumulate)  # each raises ConfigError quoting the bad value
        if self.ema_decay is not None:
            Ema(decay=self.ema_decay)
        if self.lookahead_every is not None:
            Lookahead(every=self.lookahead_every, alpha=self.lookahead_alpha)
        if self.threads is not None:
            Threads(num_threads=self.threads)
        if self.precision not in ("fp32", "bf16"):
            raise ConfigError(f"precision must be 'fp32' or 'bf16', got {self.precision!r}")

    @classmethod
    def from_recipe(cls, recipe: Recipe) -> KerasAcceleration:
        """The Keras settings for a jiasu recipe's accumulate, ema, lookahead, threads, bf16.

        Any other technique raises `ConfigError`: it has no Keras form (use `jiasu.fit`).
        """
        fields: dict[str, Any] = {}
        for technique in recipe.techniques:
            if isinstance(technique, Accumulate):
                if technique.reduction != "mean":
                    raise ConfigError(
                        "Keras accumulates gradients as a mean only; use accumulate with "
                        "reduction='mean' (with Adam the two give the same steps)"
                    )
                fields["accumulate"] = technique.k
            elif isinstance(technique, Ema):
                fields["ema_decay"] = technique.decay
            elif isinstance(technique, Lookahead):
                fields["lookahead_every"] = technique.every
                fields["lookahead_alpha"] = technique.alpha
            elif isinstance(technique, Threads):
                from jiasu.hardware.threads import default_threads

                fields["threads"] = technique.num_threads or default_threads()
            elif isinstance(technique, MixedPrecision) and technique.dtype == "bf16":
                fields["precision"] = "bf16"
            else:
                raise ConfigError(
                    f"technique {technique.name!r} has no Keras form; remove it from the recipe "
                    "or train with jiasu.fit(as_torch_module(model), ...)"
                )
        return cls(**fields)

    def plan(self) -> list[dict[str, str]]:
        """What will be applied and what skipped, each with the reason, like `History`."""
        rows = []
        if self.accumulate > 1:
            rows.append(_row("accumulate", f"gradient_accumulation_steps={self.accumulate}"))
        if self.ema_decay is not None:
            rows.append(_row("ema", f"use_ema=True, ema_momentum={self.ema_decay}"))
        if self.lookahead_every is not None:
            detail = f"every {self.lookahead_every} steps, alpha {self.lookahead_alpha}"
            rows.append(_row("lookahead", detail))
        if self.threads is not None:
            skip = _threads_skip_reason()
            rows.append(_row("threads", f"{self.threads} intra-op threads", skip))
        if self.precision == "bf16":
            rows.append(_row("precision", "mixed_bfloat16 dtype policy", _bf16_skip_reason()))
        return rows

    def optimizer(self, base: Any = "adam") -> Any:
        """A fresh copy of `base` (an optimizer or its name) with accumulation and EMA set."""
        source = keras.optimizers.get(base)
        if source.built:
            raise ConfigError(
                "the optimizer has already been used (it holds variables); pass a fresh one, "
                "e.g. keras.optimizers.Adam()"
            )
        config = source.get_config()
        config["gradient_accumulation_steps"] = self.accumulate if self.accumulate > 1 else None
        if self.ema_decay is not None:
            config["use_ema"] = True
            config["ema_momentum"] = float(self.ema_decay)
        return type(source).from_config(config)

    def callbacks(self) -> list[Any]:
        """The callbacks for ``model.fit``: Lookahead, Threads and Precision where they apply."""
        out: list[Any] = []
        if self.lookahead_every is not None:
            out.append(KerasLookahead(self.lookahead_every, self.lookahead_alpha))
        if self.threads is not None and _threads_skip_reason() is None:
            out.append(KerasThreads(self.threads))
        if self.precision == "bf16" and _bf16_skip_reason() is None:
            out.append(KerasPrecision("mixed_bfloat16"))
        return out


def _row(name: str, detail: str, skip_reason: str | None = None) -> dict[str, str]:
    if skip_reason is None:
        return {"name": name, "status": "applied", "detail": detail}
    return {"name": name, "status": "skipped", "detail": skip_reason}


def _threads_skip_reason() -> str | None:
    name = backend()
    if name == "torch":
        return None
    return f"on the {name} backend, threads are set in its runtime before Keras starts"


def _bf16_skip_reason() -> str | None:
    if backend() == "torch":
        import torch

        if not torch.cuda.is_available() and not cpu_has_bf16_units():
            return "this CPU has no bf16 units (AVX-512 BF16 or AMX): bf16 would be slower"
    return None


# --- callbacks (keras.ops only) -----------------------------------------------------------
class KerasLookahead(_Callback):
    """Every `every` optimizer steps: slow ← slow + alpha·(fast − slow); fast ← slow.

    Steps are the optimizer's (``optimizer.iterations``), so with gradient accumulation the
    pull comes every `every` real updates, as in jiasu. Zhang et al., "Lookahead Optimizer".
    """

    def __init__(self, every: int = 5, alpha: float = 0.5) -> None:
        super().__init__()
        Lookahead(every=every, alpha=alpha)  # validate
        self.every, self.alpha = every, float(alpha)
        self._slow: list[Any] = []
        self._start = 0
        self._last = 0

    def _step(self) -> int:
        iterations = self.model.optimizer.iterations
        return int(keras.ops.convert_to_numpy(iterations))

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        ops = keras.ops
        self._slow = [ops.copy(ops.stop_gradient(v)) for v in self.model.trainable_variables]
        self._start = self._last = self._step()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        step = self._step()
        if step == self._last:
            return  # a micro-batch that only accumulated
        self._last = step
        if (step - self._start) % self.every:
            return
        ops = keras.ops
        for i, variable in enumerate(self.model.trainable_variables):
            slow = self._slow[i]
            fast = ops.stop_gradient(variable)
            self._slow[i] = ops.add(slow, ops.multiply(self.alpha, ops.subtract(fast, slow)))
            variable.assign(self._slow[i])


class KerasThreads(_Callback):
    """Train with `num_threads` intra-op threads (torch backend), restored afterwards."""

    def __init__(self, num_threads: int) -> None:
        super().__init__()
        Threads(num_threads=num_threads)  # validate
        self.num_threads = num_threads
        self._previous: int | None = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        from jiasu.hardware.threads import set_threads

        self._previous = set_threads(self.num_threads)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        from jiasu.hardware.threads import set_threads

        if self._previous is not None:
            set_threads(self._previous)
            self._previous = None


class KerasPrecision(_Callback):
    """Train under a mixed dtype policy (float32 weights), restoring each layer's policy after.

    Predictions after training run at the model's own precision again.
    """

    def __init__(self, policy: str = "mixed_bfloat16") -> None:
        super().__init__()
        self.policy = policy
        self._saved: list[tuple[Any, Any]] = []

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._saved = [(layer, layer.dtype_policy) for layer in _layers(self.model)]
        for layer, _ in self._saved:
            layer.dtype_policy = self.policy

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        for layer, policy in self._saved:
            layer.dtype_policy = policy
        self._saved = []


def _layers(model: Any) -> list[Any]:
    """Every layer of `model`, nested models included (not the model itself)."""
    found = []
    for layer in model.layers:
        found.append(layer)
        if isinstance(layer, keras.Model):
            found.extend(_layers(layer))
    return found
