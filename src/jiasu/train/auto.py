"""`--recipe auto`: measure which exact and numeric techniques pay on *this* machine.

A recipe is built in two parts:

1. **Schedule** (approximate techniques that change the optimisation: batch size with
   learning-rate scaling, one-cycle, label smoothing): taken from `SCHEDULES`, the
   settings that `benchmarks/train_mnist.py` found to reach the target accuracy fastest,
   scaled to the dataset size. These are reported as approximate.
2. **Probes** (exact and numeric techniques: threads, data placement, fused steps,
   layout, precision, compilation, CUDA settings): each is tried on top of what has been
   kept so far, for a few training steps, against the current recipe in the same
   interleaved measurement. A technique is kept when its median step time is lower by
   more than the noise margin, its losses track the current recipe's within its
   exactness tolerance, and — for compilation — the planned number of steps passes the
   break-even point ``compile_seconds / seconds_saved_per_step``.

Every technique left out is reported with its reason.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from jiasu.core.errors import one_line
from jiasu.core.recipe import Recipe
from jiasu.core.technique import Exactness
from jiasu.measure import compare
from jiasu.train.data import Arrays
from jiasu.train.fit import apply_techniques, build_live_run, process_settings
from jiasu.train.history import History
from jiasu.train.loop import compile_warmup, train_steps
from jiasu.train.model_arg import ExternalModel, ModelSpec
from jiasu.train.setup import TrainSetup, TrainTechnique
from jiasu.train.techniques import (
    ChannelsLast,
    Compile,
    CudaGraphs,
    CudnnBenchmark,
    DeviceData,
    DevicePlacement,
    FusedOptimizer,
    LabelSmoothing,
    LargeBatch,
    MixedPrecision,
    OneCycle,
    PinnedMemory,
    Threads,
)
from jiasu.ui.progress import TaskProgress, progress_enabled

# Probed in this order; each one on top of those kept before it.
PROBES: tuple[Callable[[], TrainTechnique], ...] = (
    DevicePlacement,
    Threads,
    DeviceData,
    PinnedMemory,
    FusedOptimizer,
    ChannelsLast,
    CudnnBenchmark,
    lambda: MixedPrecision("bf16"),
    Compile,
    CudaGraphs,
)

# Loss agreement demanded over the probe steps, by exactness (relative difference).
LOSS_TOLERANCE = {Exactness.EXACT: 1e-3, Exactness.NUMERIC: 5e-2}
MIN_SPEEDUP = 1.03  # below this a "gain" is within run-to-run noise on a busy machine


@dataclasses.dataclass(frozen=True)
class ScheduleRule:
    """An approximate part of a recipe, as found by the time-to-accuracy benchmark."""

    batch_size: int
    lr_scaling: str
    one_cycle_factor: float | None
    label_smoothing: float | None
    why: str


# Found by benchmarks/train_mnist.py on the 2-core CPU (see benchmarks/RESULTS.md).
SCHEDULES: dict[str, ScheduleRule] = {
    "conv": ScheduleRule(
        batch_size=128,
        lr_scaling="sqrt",
        one_cycle_factor=8.0,
        label_smoothing=0.1,
        why="batch 128, one-cycle to 8× lr and label smoothing 0.1: 99% MNIST in one epoch",
    ),
    "dense": ScheduleRule(
        batch_size=256,
        lr_scaling="sqrt",
        one_cycle_factor=4.0,
        label_smoothing=None,
        why="batch 256 + one-cycle: most samples/s at equal accuracy",
    ),
}


@dataclasses.dataclass(frozen=True)
class Probe:
    """What measuring one technique found."""

    name: str
    kept: bool
    reason: str
    speedup: float | None = None  # median step time without / with
    speedup_p10: float | None = None
    speedup_p90: float | None = None
    step_ms_without: float | None = None
    step_ms_with: float | None = None
    compile_seconds: float | None = None
    break_even_steps: float | None = None
    loss_difference: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class AutoRecipe:
    recipe: Recipe
    probes: tuple[Probe, ...]
    schedule: tuple[str, ...]  # the approximate techniques and why they are there

    def kept(self) -> list[dict[str, str]]:
        return [{"name": t.describe(), "why": self._why(t.name)} for t in self.recipe.techniques]

    def dropped(self) -> list[dict[str, str]]:
        return [{"name": p.name, "reason": p.reason} for p in self.probes if not p.kept]

    def _why(self, name: str) -> str:
        for probe in self.probes:
            if probe.name == name:
                return probe.reason
        return "schedule: " + "; ".join(self.schedule)


def schedule_for(model: torch.nn.Module, n_samples: int) -> tuple[list[TrainTechnique], str]:
    """The approximate techniques for this kind of model, scaled to the dataset size."""
    has_conv = any(isinstance(m, torch.nn.Conv2d) for m in model.modules())
    rule = SCHEDULES["conv" if has_conv else "dense"]
    # keep at least ~100 optimizer steps per epoch on small datasets
    batch = max(32, min(rule.batch_size, 2 ** int(math.log2(max(1, n_samples // 100)))))
    techniques: list[TrainTechnique] = []
    if batch > 32:
        techniques.append(LargeBatch(batch_size=batch, lr_scaling=rule.lr_scaling))  # type: ignore[arg-type]
    if rule.one_cycle_factor is not None:
        techniques.append(OneCycle(max_lr_factor=rule.one_cycle_factor))
    if rule.label_smoothing is not None:
        techniques.append(LabelSmoothing(epsilon=rule.label_smoothing))
    return techniques, rule.why


def auto_recipe(
    spec: ModelSpec | ExternalModel,
    train: Arrays,
    *,
    epochs: int,
    batch_size: int = 32,
    lr: float = 1e-3,
    optimizer: str = "adam",
    device: torch.device | None = None,
    seed: int = 0,
    probe_steps: int = 12,
    repeats: int = 5,
    quiet: bool = True,
    probes: Sequence[Callable[[], TrainTechnique]] = PROBES,
) -> AutoRecipe:
    """Build the recipe for training `spec` on `train` for `epochs` epochs on this machine.

    `probes` are the exact and numeric techniques to try, in order (default: all).
    """
    device = device or torch.device("cpu")
    torch.manual_seed(seed)
    schedule, why = schedule_for(spec.build(), len(train))
    kept: list[TrainTechnique] = list(schedule)
    results: list[Probe] = []
    candidates = [make() for make in probes]
    with TaskProgress(enabled=progress_enabled(quiet)) as bar:
        bar.start("probing techniques", total=len(candidates))
        for candidate in candidates:
            probe = _probe(spec, train, kept, candidate, epochs, batch_size, lr, optimizer,
                           device, seed, probe_steps, repeats)  # fmt: skip
            results.append(probe)
            if probe.kept:
                kept.append(candidate)
            bar.advance(status=f"{candidate.name}: {'kept' if probe.kept else 'dropped'}")
    # Order: probed (exact/numeric) techniques first, the schedule after them.
    ordered = [t for t in kept if t not in schedule] + schedule
    schedule_notes = tuple(f"{t.describe()} ({why})" for t in schedule)
    return AutoRecipe(Recipe("auto", tuple(ordered)), tuple(results), schedule_notes)


def _probe(
    spec: ModelSpec | ExternalModel,
    train: Arrays,
    kept: Sequence[TrainTechnique],
    candidate: TrainTechnique,
    epochs: int,
    batch_size: int,
    lr: float,
    optimizer: str,
    device: torch.device,
    seed: int,
    steps: int,
    repeats: int,
) -> Probe:
    name = candidate.name
    current = _Runner(spec, train, kept, epochs, batch_size, lr, optimizer, device, seed)
    answer = candidate.applies_to(current.setup)
    if not answer:
        return Probe(name, False, answer.reason)
    trial = _Runner(
        spec, train, [*kept, candidate], epochs, batch_size, lr, optimizer, device, seed
    )
    try:
        loss_difference = _loss_difference(current, trial, steps)
        tolerance = LOSS_TOLERANCE.get(candidate.effect.exactness, math.inf)
        if not loss_difference <= tolerance:
            return Probe(name, False, f"losses differ by {loss_difference:.2%} (> {tolerance:.1%})",
                         loss_difference=loss_difference)  # fmt: skip
        compile_s = trial.warm_up()
        current.warm_up()
        comparison = compare(
            {"current": current.steps_fn(steps), "candidate": trial.steps_fn(steps)},
            baseline="current", warmup=1, repeats=repeats,
        )  # fmt: skip
    except Exception as exc:  # a technique that breaks here is dropped, never fatal
        return Probe(name, False, f"failed: {one_line(exc)}")
    result = comparison.results["candidate"]
    if not result.ok or result.measurement is None:
        return Probe(name, False, f"failed: {result.error}")
    base_ms = comparison.results["current"].measurement.median_s * 1000 / steps  # type: ignore[union-attr]
    with_ms = result.measurement.median_s * 1000 / steps
    spread = result.speedup_summary
    probe = Probe(
        name, False, "", result.speedup,
        spread.p10 if spread else None, spread.p90 if spread else None,
        base_ms, with_ms, compile_s or None, None, loss_difference,
    )  # fmt: skip
    if result.speedup is None or result.speedup < MIN_SPEEDUP:
        return dataclasses.replace(probe, reason=f"no gain: {result.speedup:.2f}× step time")
    if compile_s:
        saved_s = (base_ms - with_ms) / 1000
        break_even = compile_s / saved_s
        planned = epochs * trial.setup.steps_per_epoch
        probe = dataclasses.replace(probe, break_even_steps=break_even)
        if planned < break_even:
            return dataclasses.replace(
                probe,
                reason=f"{result.speedup:.2f}× per step, but {compile_s:.1f} s of compilation "
                f"pays off only after {break_even:.0f} steps; this run plans {planned}",
            )
    return dataclasses.replace(probe, kept=True, reason=f"{result.speedup:.2f}× step time")


class _Runner:
    """One configuration's live run, kept to time steps (model from the same seed)."""

    def __init__(
        self,
        spec: ModelSpec | ExternalModel,
        train: Arrays,
        techniques: Sequence[TrainTechnique],
        epochs: int,
        batch_size: int,
        lr: float,
        optimizer: str,
        device: torch.device,
        seed: int,
    ) -> None:
        torch.manual_seed(seed)
        setup = TrainSetup(spec.build(), device, batch_size, lr, optimizer,
                           num_train_samples=len(train), epochs=epochs)  # fmt: skip
        self.setup, active = apply_techniques(setup, list(techniques), History())
        self.train = train
        with process_settings(self.setup):
            self.live, _ = build_live_run(self.setup, active, train, seed)
        self.initial = copy.deepcopy(self.live.model.state_dict())
        self.seed = seed
        self.compiled = False

    def warm_up(self) -> float:
        if self.setup.compile_mode and not self.compiled:
            self.compiled = True
            with process_settings(self.setup):
                return compile_warmup(self.live, self.train)
        return 0.0

    def losses(self, steps: int) -> list[float]:
        """Losses of the first `steps` steps from the initial weights and RNG state."""
        self.live.model.load_state_dict(self.initial)
        torch.manual_seed(self.seed)  # same dropout masks on both sides
        with process_settings(self.setup):
            return train_steps(self.live, steps)

    def steps_fn(self, steps: int) -> Callable[[], object]:
        def run() -> object:
            with process_settings(self.setup):
                return train_steps(self.live, steps, record=False)

        return run


def _loss_difference(current: _Runner, trial: _Runner, steps: int) -> float:
    a, b = current.losses(steps), trial.losses(steps)
    return max(abs(x - y) / max(abs(x), 1e-8) for x, y in zip(a, b, strict=True))


__all__ = ["SCHEDULES", "AutoRecipe", "Probe", "auto_recipe", "schedule_for"]
