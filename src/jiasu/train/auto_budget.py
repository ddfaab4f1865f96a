"""How long `--recipe auto` may probe: its budget, and how a probe is sized to fit it.

By default the budget is `BUDGET_SHARE` (10 %) of the planned training time, at least
`MIN_BUDGET_S`. The planned time is estimated before any probe: the recipe without
probed techniques (the schedule alone) is built and `PLAN_STEPS` of its training steps
are timed after one warm-up step; planned seconds = seconds per step × steps per epoch
× epochs. A budget given in seconds (``--probe-budget``) replaces the estimate.

The budget counts from the end of that timing (whose time, one build and a few steps,
includes the one-off costs the training would pay anyway, such as torch's lazy imports,
and is reported apart). Every probe is sized to its share of what is left (steps per
timed call and interleaved rounds, down to `MIN_STEPS` and `MIN_ROUNDS`); a probe whose
smallest size would end after the budget (by its estimate, building its two runs
included), and every probe after the budget is spent, is not run and says so. A probe
is never interrupted, so probing ends within the budget unless a step takes longer than
estimated.
"""

from __future__ import annotations

import dataclasses
import math
import time

from jiasu.core.errors import ConfigError

BUDGET_SHARE = 0.10  # of the planned training time
# Below this no probe gets the few rounds a decision needs, and the budget buys nothing.
MIN_BUDGET_S = 2.0
MIN_STEPS, MIN_ROUNDS = 2, 3  # the smallest probe: 3 interleaved rounds of 2 steps a side
# A step this long (seconds) is timed alone: the smallest probe then times 1 step a side
# (on BERT under load, 2 steps a side did not fit a short run's budget at all).
LONG_STEP_S = 0.05
# Training steps one probe runs, as multiples of its steps per timed call: the loss
# check (2: both sides; it also warms both up) and the timed rounds (2 per round).
FIXED_CALLS = 2
PLAN_STEPS = 3  # steps timed (after one warm-up step) to estimate the planned time
# Compiling a model (torch.compile's first call) cannot be interrupted: it is probed only
# when the seconds it took last time on this machine, or this guess when unknown
# (a small CNN's forward and backward with inductor on a 2-core CPU), are left.
COMPILE_GUESS_S = 20.0


def check_budget(seconds: float | None) -> float | None:
    """`seconds` when it is None or a positive finite number; else `ConfigError`."""
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise ConfigError(f"probe budget must be a number of seconds, got {seconds!r:.40}")
    if not 0 < seconds < math.inf:
        raise ConfigError(f"probe budget must be a positive number of seconds, got {seconds!r}")
    return float(seconds)


@dataclasses.dataclass(frozen=True)
class PlannedTime:
    """The planned training time, from the timed steps of the recipe without probes."""

    step_s: float  # seconds per training step
    steps_per_epoch: int
    epochs: int

    @property
    def seconds(self) -> float:
        return self.step_s * self.steps_per_epoch * self.epochs

    def describe(self) -> str:
        return (
            f"{self.seconds:.1f} s planned ({self.step_s * 1000:.1f} ms a step × "
            f"{self.steps_per_epoch} steps × {self.epochs} epoch(s))"
        )


class ProbeBudget:
    """A wall-clock budget for the probes, counted from its creation: `given_s`, or
    `BUDGET_SHARE` of `planned`, at least `MIN_BUDGET_S`."""

    def __init__(self, given_s: float | None, planned: PlannedTime) -> None:
        self.started = time.perf_counter()
        if given_s is not None:
            self.seconds, self.why = given_s, f"{given_s:g} s, as given"
            return
        share = BUDGET_SHARE * planned.seconds
        self.seconds = max(MIN_BUDGET_S, share)
        floor = f", raised to the {MIN_BUDGET_S:g} s minimum" if share < MIN_BUDGET_S else ""
        self.why = f"{BUDGET_SHARE:.0%} of the {planned.describe()}{floor}"

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def left(self) -> float:
        return self.seconds - self.elapsed()

    def spent_reason(self) -> str:
        return f"not probed: the probe budget ({self.seconds:.1f} s) was spent"


@dataclasses.dataclass(frozen=True)
class ProbeSize:
    """How much one probe measures: steps per timed call, rounds, and extra-round seconds."""

    steps: int
    rounds: int
    extra_s: float  # seconds of further rounds allowed when the first ones cannot decide
    max_rounds: int  # and at most this many rounds in all

    def seconds(self, step_s: float) -> float:
        """The probe's expected seconds at `step_s` a step (both sides, before extra rounds)."""
        return step_s * self.steps * (FIXED_CALLS + 2 * self.rounds)


def min_steps(step_s: float) -> int:
    """The fewest steps per timed call: `MIN_STEPS`, or 1 for a step of `LONG_STEP_S` or more."""
    return 1 if step_s >= LONG_STEP_S else MIN_STEPS


def size_probe(
    share_s: float, step_s: float, *, steps: int, rounds: int, extra_s: float, max_rounds: int
) -> ProbeSize | None:
    """The largest probe up to (`steps`, `rounds`) that fits `share_s` seconds at `step_s`
    a step (rounds first, then steps, shrink towards the minimum); None if even the
    smallest does not fit."""
    low_rounds, low_steps = min(MIN_ROUNDS, rounds), min(min_steps(step_s), steps)
    for size_rounds in range(rounds, low_rounds - 1, -1):
        per_step = max(step_s, 1e-9) * (FIXED_CALLS + 2 * size_rounds)
        fit = min(steps, int(share_s / per_step))
        # fewer rounds before fewer steps than half: a step too short to time is noise
        if fit >= max(low_steps, steps // 2) or (size_rounds == low_rounds and fit >= low_steps):
            spare = share_s - ProbeSize(fit, size_rounds, 0.0, size_rounds).seconds(step_s)
            extra = max(0.0, min(extra_s, spare))
            return ProbeSize(fit, size_rounds, extra, max(size_rounds, max_rounds))
    return None
