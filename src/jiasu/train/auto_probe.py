"""One probe of `--recipe auto`: a technique timed on top of the recipe so far.

A probe builds the current recipe and the current recipe plus the technique from the
same seed, checks that their losses agree within the technique's exactness tolerance,
then times both in interleaved rounds (`compare`: drift hits both alike) and lets
`auto_decide.decide` keep or drop it. Its size (steps per call, rounds, extra rounds)
comes from the probe budget (`auto_budget`).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from jiasu.core.errors import one_line
from jiasu.core.technique import Exactness
from jiasu.measure import compare
from jiasu.measure.stats import RATIO_CONFIDENCE
from jiasu.train.auto_budget import ProbeSize
from jiasu.train.auto_decide import DEFAULT_KEEP, DecisionCache, decide
from jiasu.train.data import Samples, samples_count
from jiasu.train.fit import apply_techniques, build_live_run, data_kind, process_settings
from jiasu.train.history import History
from jiasu.train.loop import compile_warmup, train_steps
from jiasu.train.model_arg import ExternalModel, ModelSpec
from jiasu.train.objective import Objective
from jiasu.train.setup import TrainSetup, TrainTechnique

# Loss agreement demanded over the probe steps, by exactness (relative difference).
LOSS_TOLERANCE = {Exactness.EXACT: 1e-3, Exactness.NUMERIC: 5e-2}
# What a probe's decision rests on, beyond `auto_decide.Basis`.
NOT_APPLICABLE, NOT_PROBED, CHECK = "not applicable", "not probed", "check"


@dataclasses.dataclass(frozen=True)
class Probe:
    """What measuring one technique found (or why it was not measured)."""

    name: str
    kept: bool
    reason: str
    speedup: float | None = None  # median step time without / with
    # its RATIO_CONFIDENCE interval from the paired rounds
    speedup_low: float | None = None
    speedup_high: float | None = None
    rounds: int | None = None  # interleaved A/B rounds timed
    # what the decision rests on: "measured", "prior" (this machine's earlier decision),
    # "default" (DEFAULT_KEEP), "check" (losses differ, or it failed), "not applicable"
    # (the technique cannot act on this run) or "not probed" (the probe budget)
    basis: str = CHECK
    step_ms_without: float | None = None
    step_ms_with: float | None = None
    compile_seconds: float | None = None
    break_even_steps: float | None = None
    loss_difference: float | None = None
    seconds: float | None = None  # wall time this probe took, building included
    steps: int | None = None  # training steps per timed call

    @property
    def outcome(self) -> str:
        """kept, dropped, not applicable or not probed."""
        if self.basis in (NOT_APPLICABLE, NOT_PROBED):
            return self.basis
        return "kept" if self.kept else "dropped"

    def to_dict(self) -> dict[str, Any]:
        return {
            **dataclasses.asdict(self),
            "outcome": self.outcome,
            "confidence": RATIO_CONFIDENCE,
        }

    def figures(self) -> str:
        """One line: "1.94× (1.85–2.02), 7 rounds, kept (measured)"."""
        if self.speedup is None:
            return f"{self.outcome} ({self.basis})"
        return (
            f"{self.speedup:.2f}× ({self.speedup_low:.2f}–{self.speedup_high:.2f}), "
            f"{self.rounds} rounds, {self.outcome} ({self.basis})"
        )


@dataclasses.dataclass(frozen=True)
class ProbeContext:
    """What every probe of one auto step shares: the model, data, run settings, memory."""

    spec: ModelSpec | ExternalModel
    samples: Samples
    objective: Objective
    names: tuple[str, ...] | None  # orders dict batches of a streamed dataset
    epochs: int
    batch_size: int
    lr: float
    optimizer: str
    device: torch.device
    seed: int
    cache: DecisionCache
    key: str  # `decision_key` of this model, schedule and machine


class Runner:
    """One configuration's live run, kept to time steps (model from the same seed)."""

    def __init__(self, ctx: ProbeContext, techniques: Sequence[TrainTechnique]) -> None:
        torch.manual_seed(ctx.seed)
        setup = TrainSetup(ctx.spec.build(), ctx.device, ctx.batch_size, ctx.lr, ctx.optimizer,
                           num_train_samples=samples_count(ctx.samples), epochs=ctx.epochs,
                           data=data_kind(ctx.samples), task=ctx.objective.task,
                           custom_loss=ctx.objective.custom_loss)  # fmt: skip
        self.setup, active = apply_techniques(setup, list(techniques), History())
        self.ctx = ctx
        with process_settings(self.setup):
            self.live, _ = build_live_run(self.setup, active, ctx.samples, ctx.seed,
                                          objective=ctx.objective, names=ctx.names)  # fmt: skip
        self.initial = copy.deepcopy(self.live.model.state_dict())
        self.compiled = False

    def warm_up(self) -> float:
        """Compile (when the recipe compiles) before timing; the seconds it took."""
        if self.setup.compile_mode and not self.compiled:
            self.compiled = True
            with process_settings(self.setup):
                return compile_warmup(self.live, self.ctx.samples)
        return 0.0

    def losses(self, steps: int) -> list[float]:
        """Losses of the first `steps` steps from the initial weights and RNG state."""
        self.live.model.load_state_dict(self.initial)
        torch.manual_seed(self.ctx.seed)  # same dropout masks on both sides
        with process_settings(self.setup):
            return train_steps(self.live, steps)

    def steps_fn(self, steps: int) -> Callable[[], object]:
        def run() -> object:
            with process_settings(self.setup):
                return train_steps(self.live, steps, record=False)

        return run

    def step_seconds(self, steps: int) -> float:
        """Seconds per training step: `steps` steps timed after one warm-up step."""
        self.steps_fn(1)()
        started = time.perf_counter()
        self.steps_fn(steps)()
        return (time.perf_counter() - started) / steps


def paired_rounds(
    current: Runner,
    trial: Runner,
    size: ProbeSize,
    undecided: Callable[[list[float], list[float]], bool],
    seconds_left: Callable[[], float],
) -> tuple[list[float], list[float]]:
    """Seconds per call of (current, trial) in interleaved rounds: `size.rounds` first,
    then more while `undecided`, within `size.extra_s` seconds and `seconds_left()`, up to
    `size.max_rounds` in all."""
    without: list[float] = []
    with_: list[float] = []
    rounds, extra_spent = size.rounds, 0.0
    while rounds > 0:
        started = time.perf_counter()
        comparison = compare(
            {"current": current.steps_fn(size.steps), "candidate": trial.steps_fn(size.steps)},
            baseline="current", warmup=0, repeats=rounds,  # the loss check warmed both up
        )  # fmt: skip
        spent = time.perf_counter() - started
        for side, out in (("current", without), ("candidate", with_)):
            result = comparison.results[side]
            if result.measurement is None:
                raise RuntimeError(result.error or f"the {side} configuration failed")
            out.extend(result.measurement.seconds)
        if not undecided(without, with_):
            break
        if len(with_) > size.rounds:
            extra_spent += spent
        per_round = sum(without + with_) / len(with_)
        allowed = min(size.extra_s - extra_spent, seconds_left())
        rounds = min(size.max_rounds - len(with_), int(allowed / per_round))
    return without, with_


def probe_technique(
    ctx: ProbeContext,
    current: Runner,
    candidate: TrainTechnique,
    trial: Runner,
    size: ProbeSize,
    seconds_left: Callable[[], float],
) -> Probe:
    """Measure `candidate` (`trial` = `current` + it) and keep or drop it, with the reason."""
    name = candidate.name
    prior = ctx.cache.get(ctx.key, name)
    default = name in DEFAULT_KEEP

    def rule(without: list[float], with_: list[float]) -> Any:
        return decide(without, with_, prior=prior, default=default)

    try:
        loss_difference = _loss_difference(current, trial, size.steps)
        tolerance = LOSS_TOLERANCE.get(candidate.effect.exactness, math.inf)
        if not loss_difference <= tolerance:
            reason = f"changes the loss: losses differ by {loss_difference:.2%} (> {tolerance:.1%})"
            return Probe(name, False, reason, loss_difference=loss_difference, steps=size.steps)
        compile_s = trial.warm_up()
        if compile_s:
            ctx.cache.put_compile_seconds(ctx.key, compile_s)
        current.warm_up()
        without, with_ = paired_rounds(
            current, trial, size, lambda a, b: rule(a, b).basis != "measured", seconds_left
        )
    except Exception as exc:  # a technique that breaks here is dropped, never fatal
        return Probe(name, False, f"failed: {one_line(exc)}", steps=size.steps)
    decision = rule(without, with_)
    if decision.basis == "measured":
        ctx.cache.put(ctx.key, name, decision)
    base_ms = statistics.median(without) * 1000 / size.steps
    with_ms = statistics.median(with_) * 1000 / size.steps
    probe = Probe(
        name, decision.kept, decision.reason, decision.speedup, decision.low, decision.high,
        decision.rounds, decision.basis, base_ms, with_ms, compile_s or None, None,
        loss_difference, steps=size.steps,
    )  # fmt: skip
    if not decision.kept or not compile_s:
        return probe
    if base_ms <= with_ms:
        reason = f"{decision.reason}; but no time saved per step repays {compile_s:.1f} s compiling"
        return dataclasses.replace(probe, kept=False, reason=reason)
    break_even = compile_s / ((base_ms - with_ms) / 1000)
    planned = ctx.epochs * trial.setup.steps_per_epoch
    probe = dataclasses.replace(probe, break_even_steps=break_even)
    if planned < break_even:
        return dataclasses.replace(
            probe,
            kept=False,
            reason=f"{decision.speedup:.2f}× per step, but {compile_s:.1f} s of compilation "
            f"pays off only after {break_even:.0f} steps; this run plans {planned}",
        )
    return probe


def _loss_difference(current: Runner, trial: Runner, steps: int) -> float:
    a, b = current.losses(steps), trial.losses(steps)
    return max(abs(x - y) / max(abs(x), 1e-8) for x, y in zip(a, b, strict=True))
