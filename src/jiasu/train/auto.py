"""`--recipe auto`: measure which exact and numeric techniques pay on *this* machine.

A recipe is built in two parts:

1. **Schedule** (approximate techniques that change the optimisation: batch size with
   learning-rate scaling, one-cycle, label smoothing): taken from `SCHEDULES`, the
   settings that `benchmarks/train_mnist.py` found to reach the target accuracy fastest,
   scaled to the dataset size. These are reported as approximate.
2. **Probes** (exact and numeric techniques: threads, data placement, fused steps,
   layout, precision, compilation, CUDA settings): each is tried on top of what has been
   kept so far, for a few training steps, against the current recipe in interleaved
   rounds (A/B, B/A, ...: drift hits both alike). Its losses must track the current
   recipe's within its exactness tolerance; then `decide` judges the step times:

   * keep when the *lower* bound of the paired-ratio interval (a 90 % bootstrap over the
     rounds of median time without / median time with) clears `MIN_SPEEDUP`;
   * drop when the *upper* bound is below it;
   * otherwise the probe adds rounds while its time budget lasts, and if the interval
     still straddles the threshold the measurement cannot tell: the decision recorded
     for this model on this machine last time holds (`DecisionCache`, a small JSON file
     in the user cache dir), or, with none, the technique's documented default
     (`DEFAULT_KEEP`).

   For compilation the planned number of steps must also pass the break-even point
   ``compile_seconds / seconds_saved_per_step``.

Every probe reports its median ratio, interval, rounds, decision, what it rests on and
why (`Probe`, in the train JSON under "probes" and under the `jiasu train` table).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import json
import math
import socket
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import torch

from jiasu.core.atomic import atomic_write_text
from jiasu.core.cache import cache_dir
from jiasu.core.errors import one_line
from jiasu.core.recipe import Recipe
from jiasu.core.technique import Exactness
from jiasu.hardware.cpu import cpu_info
from jiasu.measure import compare
from jiasu.measure.stats import RATIO_CONFIDENCE, paired_ratio_interval
from jiasu.train.data import Samples, samples_count
from jiasu.train.fit import apply_techniques, build_live_run, data_kind, process_settings
from jiasu.train.history import History
from jiasu.train.loop import compile_warmup, train_steps
from jiasu.train.model_arg import ExternalModel, ModelSpec
from jiasu.train.objective import Objective
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
# What an undecided probe does when this machine has no earlier decision for the model:
# keep what benchmarks/RESULTS.md measured to pay on CPUs (channels_last 1.38–2.03× on the
# CNN, device_data 1.84× and fused_optimizer 1.11× on the MLP); drop the rest, whose gain
# depends on the hardware (bf16 needs AMX / AVX512-BF16, compile must pay its warm-up).
DEFAULT_KEEP = frozenset({"channels_last", "device_data", "fused_optimizer"})
DECISIONS_FILE = "auto_decisions.json"

Basis = Literal["measured", "prior", "default"]


@dataclasses.dataclass(frozen=True)
class Decision:
    """`decide`'s verdict on one technique from paired step times."""

    kept: bool
    basis: Basis  # measured: the interval settled it; prior / default: it could not
    speedup: float  # median time without / median time with (> 1: the technique is faster)
    low: float  # the RATIO_CONFIDENCE interval of `speedup` from the paired rounds
    high: float
    rounds: int
    reason: str


@dataclasses.dataclass(frozen=True)
class PriorDecision:
    """The decision measured for the same model on this machine before."""

    kept: bool
    speedup: float
    at: str  # ISO 8601 time it was measured


def decide(
    without_s: Sequence[float],
    with_s: Sequence[float],
    *,
    threshold: float = MIN_SPEEDUP,
    prior: PriorDecision | None = None,
    default: bool = False,
) -> Decision:
    """Keep or drop a technique from paired rounds of step times (seconds, round i of both
    timed together): keep if the interval's lower bound clears `threshold`, drop if its
    upper bound is below it, else `prior`'s decision, else `default`.

    >>> decide([2.0, 2.1, 1.9, 2.0], [1.0, 1.05, 1.0, 0.98]).kept
    True
    >>> decide([1.0, 1.01, 0.99, 1.0], [1.0, 1.0, 1.0, 1.01]).kept
    False
    """
    # the interval holds its point, the ratio of the medians
    low, high = paired_ratio_interval(without_s, with_s)
    speedup = statistics.median(without_s) / statistics.median(with_s)
    figures = f"{speedup:.2f}× step time ({low:.2f}–{high:.2f}, {len(with_s)} rounds)"
    if low >= threshold:
        return Decision(True, "measured", speedup, low, high, len(with_s),
                        f"{figures}: clears {threshold:.2f}×")  # fmt: skip
    if high < threshold:
        return Decision(False, "measured", speedup, low, high, len(with_s),
                        f"no gain: {figures}, below {threshold:.2f}×")  # fmt: skip
    undecided = f"undecided: {figures} straddles {threshold:.2f}×"
    if prior is not None:
        verdict = "kept" if prior.kept else "dropped"
        reason = (
            f"{undecided}; {verdict} as measured before for this model on this machine "
            f"({prior.speedup:.2f}× on {prior.at[:10]})"
        )
        return Decision(prior.kept, "prior", speedup, low, high, len(with_s), reason)
    verdict = "kept" if default else "dropped"
    reason = f"{undecided}; {verdict} by default (no earlier decision on this machine)"
    return Decision(default, "default", speedup, low, high, len(with_s), reason)


class DecisionCache:
    """Measured keep/drop decisions per model and machine, in `path` (JSON).

    A missing or unreadable file is an empty cache; writes are atomic, and a file that
    cannot be written only costs the memory of this run's decisions.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or cache_dir() / DECISIONS_FILE

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) and isinstance(data.get("runs"), dict) else {}

    def get(self, key: str, technique: str) -> PriorDecision | None:
        entry = self._read().get("runs", {}).get(key, {}).get(technique)
        try:
            return PriorDecision(bool(entry["kept"]), float(entry["speedup"]), str(entry["at"]))
        except (KeyError, TypeError, ValueError):
            return None

    def put(self, key: str, technique: str, decision: Decision) -> None:
        data = self._read() or {"kind": "jiasu.auto-decisions", "runs": {}}
        data["runs"].setdefault(key, {})[technique] = {
            "kept": decision.kept,
            "speedup": decision.speedup,
            "interval": [decision.low, decision.high],
            "rounds": decision.rounds,
            "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        with contextlib.suppress(OSError):  # an unwritable cache must not fail the training
            atomic_write_text(self.path, json.dumps(data, indent=2) + "\n")


def decision_key(
    spec: ModelSpec | ExternalModel, schedule: Sequence[str], batch_size: int, device: torch.device
) -> str:
    """Which earlier decisions apply: the same model, schedule, batch size, device, machine."""
    identity = {
        "model": spec.to_dict(),
        "schedule": list(schedule),
        "batch_size": batch_size,
        "device": str(device),
        "host": socket.gethostname(),
        "cpu": cpu_info().model,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    text = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


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
    # its RATIO_CONFIDENCE interval from the paired rounds
    speedup_low: float | None = None
    speedup_high: float | None = None
    rounds: int | None = None  # interleaved A/B rounds timed
    # what the decision rests on: "measured", "prior" (this machine's earlier decision),
    # "default" (DEFAULT_KEEP), or "check" (not applicable, losses differ, or failed)
    basis: str = "check"
    step_ms_without: float | None = None
    step_ms_with: float | None = None
    compile_seconds: float | None = None
    break_even_steps: float | None = None
    loss_difference: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "confidence": RATIO_CONFIDENCE}

    def figures(self) -> str:
        """One line: "1.94× (1.85–2.02), 7 rounds, kept (measured)"."""
        verdict = "kept" if self.kept else "dropped"
        if self.speedup is None:
            return f"{verdict} ({self.basis})"
        return (
            f"{self.speedup:.2f}× ({self.speedup_low:.2f}–{self.speedup_high:.2f}), "
            f"{self.rounds} rounds, {verdict} ({self.basis})"
        )


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


def schedule_for(
    model: torch.nn.Module, n_samples: int, *, classification: bool = True
) -> tuple[list[TrainTechnique], str]:
    """The approximate techniques for this kind of model, scaled to the dataset size
    (label smoothing only for a classification trained on the task's loss)."""
    has_conv = any(isinstance(m, torch.nn.Conv2d) for m in model.modules())
    rule = SCHEDULES["conv" if has_conv else "dense"]
    # keep at least ~100 optimizer steps per epoch on small datasets
    batch = max(32, min(rule.batch_size, 2 ** int(math.log2(max(1, n_samples // 100)))))
    techniques: list[TrainTechnique] = []
    if batch > 32:
        techniques.append(LargeBatch(batch_size=batch, lr_scaling=rule.lr_scaling))  # type: ignore[arg-type]
    if rule.one_cycle_factor is not None:
        techniques.append(OneCycle(max_lr_factor=rule.one_cycle_factor))
    if rule.label_smoothing is not None and classification:
        techniques.append(LabelSmoothing(epsilon=rule.label_smoothing))
    return techniques, rule.why


def auto_recipe(
    spec: ModelSpec | ExternalModel,
    train: Samples,
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
    max_repeats: int = 15,
    probe_budget_s: float = 4.0,
    decisions: DecisionCache | None = None,
    objective: Objective | None = None,
    names: tuple[str, ...] | None = None,
) -> AutoRecipe:
    """Build the recipe for training `spec` on `train` for `epochs` epochs on this machine.

    `probes` are the exact and numeric techniques to try, in order (default: all). Each
    is timed in `repeats` interleaved rounds of `probe_steps` steps against the recipe so
    far; an undecided probe gets more rounds, up to `max_repeats` and `probe_budget_s`
    seconds of timed steps, before the earlier decision in `decisions` (default: the
    user cache) or `DEFAULT_KEEP` settles it. Measured decisions are recorded there.
    `objective` is the task's loss and metrics (default: a classifier's); `names` orders
    dict batches of a streamed dataset.
    """
    device = device or torch.device("cpu")
    torch.manual_seed(seed)
    objective = objective or Objective()
    plain = objective.task.kind == "classification" and not objective.custom_loss
    schedule, why = schedule_for(spec.build(), samples_count(train), classification=plain)
    data = _Data(train, objective, names)
    kept: list[TrainTechnique] = list(schedule)
    results: list[Probe] = []
    candidates = [make() for make in probes]
    timing = _Timing(probe_steps, repeats, max(repeats, max_repeats), probe_budget_s)
    cache = decisions or DecisionCache()
    key = decision_key(spec, [t.describe() for t in schedule], batch_size, device)
    with TaskProgress(enabled=progress_enabled(quiet)) as bar:
        bar.start("probing techniques", total=len(candidates))
        for candidate in candidates:
            probe = _probe(spec, data, kept, candidate, epochs, batch_size, lr, optimizer,
                           device, seed, timing, (cache, key))  # fmt: skip
            results.append(probe)
            if probe.kept:
                kept.append(candidate)
            bar.advance(status=f"{candidate.name}: {'kept' if probe.kept else 'dropped'}")
    # Order: probed (exact/numeric) techniques first, the schedule after them.
    ordered = [t for t in kept if t not in schedule] + schedule
    schedule_notes = tuple(f"{t.describe()} ({why})" for t in schedule)
    return AutoRecipe(Recipe("auto", tuple(ordered)), tuple(results), schedule_notes)


@dataclasses.dataclass(frozen=True)
class _Data:
    """The training samples, what they are trained for, and the inputs' names."""

    samples: Samples
    objective: Objective
    names: tuple[str, ...] | None


@dataclasses.dataclass(frozen=True)
class _Timing:
    steps: int  # training steps per timed call
    rounds: int  # interleaved rounds at first
    max_rounds: int  # at most this many when the first ones cannot decide
    budget_s: float  # and no more than this many seconds of timed calls in all


def _paired_rounds(
    current: _Runner,
    trial: _Runner,
    timing: _Timing,
    undecided: Callable[[list[float], list[float]], bool],
) -> tuple[list[float], list[float]]:
    """Seconds per call of (current, trial) in interleaved rounds: `timing.rounds` first,
    then more while `undecided` and the budget allows."""
    without: list[float] = []
    with_: list[float] = []
    rounds, spent = timing.rounds, 0.0
    while rounds > 0:
        started = time.perf_counter()
        comparison = compare(
            {"current": current.steps_fn(timing.steps), "candidate": trial.steps_fn(timing.steps)},
            baseline="current", warmup=1 if not without else 0, repeats=rounds,
        )  # fmt: skip
        spent += time.perf_counter() - started
        for side, out in (("current", without), ("candidate", with_)):
            result = comparison.results[side]
            if result.measurement is None:
                raise RuntimeError(result.error or f"the {side} configuration failed")
            out.extend(result.measurement.seconds)
        if not undecided(without, with_):
            break
        per_round = spent / len(with_)
        rounds = min(timing.max_rounds - len(with_), int((timing.budget_s - spent) / per_round))
    return without, with_


def _probe(
    spec: ModelSpec | ExternalModel,
    train: _Data,
    kept: Sequence[TrainTechnique],
    candidate: TrainTechnique,
    epochs: int,
    batch_size: int,
    lr: float,
    optimizer: str,
    device: torch.device,
    seed: int,
    timing: _Timing,
    memory: tuple[DecisionCache, str],
) -> Probe:
    name = candidate.name
    current = _Runner(spec, train, kept, epochs, batch_size, lr, optimizer, device, seed)
    answer = candidate.applies_to(current.setup)
    if not answer:
        return Probe(name, False, answer.reason)
    trial = _Runner(
        spec, train, [*kept, candidate], epochs, batch_size, lr, optimizer, device, seed
    )
    steps = timing.steps
    cache, key = memory
    prior = cache.get(key, name)
    default = name in DEFAULT_KEEP

    def rule(without: list[float], with_: list[float]) -> Decision:
        return decide(without, with_, prior=prior, default=default)

    try:
        loss_difference = _loss_difference(current, trial, steps)
        tolerance = LOSS_TOLERANCE.get(candidate.effect.exactness, math.inf)
        if not loss_difference <= tolerance:
            return Probe(name, False, f"losses differ by {loss_difference:.2%} (> {tolerance:.1%})",
                         loss_difference=loss_difference)  # fmt: skip
        compile_s = trial.warm_up()
        current.warm_up()
        without, with_ = _paired_rounds(
            current, trial, timing, lambda a, b: rule(a, b).basis != "measured"
        )
    except Exception as exc:  # a technique that breaks here is dropped, never fatal
        return Probe(name, False, f"failed: {one_line(exc)}")
    decision = rule(without, with_)
    if decision.basis == "measured":
        cache.put(key, name, decision)
    base_ms = statistics.median(without) * 1000 / steps
    with_ms = statistics.median(with_) * 1000 / steps
    probe = Probe(
        name, decision.kept, decision.reason, decision.speedup, decision.low, decision.high,
        decision.rounds, decision.basis, base_ms, with_ms, compile_s or None, None,
        loss_difference,
    )  # fmt: skip
    if not decision.kept:
        return probe
    if compile_s and base_ms <= with_ms:
        reason = f"{decision.reason}; but no time saved per step repays {compile_s:.1f} s compiling"
        return dataclasses.replace(probe, kept=False, reason=reason)
    if compile_s:
        saved_s = (base_ms - with_ms) / 1000
        break_even = compile_s / saved_s
        planned = epochs * trial.setup.steps_per_epoch
        probe = dataclasses.replace(probe, break_even_steps=break_even)
        if planned < break_even:
            return dataclasses.replace(
                probe,
                kept=False,
                reason=f"{decision.speedup:.2f}× per step, but {compile_s:.1f} s of compilation "
                f"pays off only after {break_even:.0f} steps; this run plans {planned}",
            )
    return probe


class _Runner:
    """One configuration's live run, kept to time steps (model from the same seed)."""

    def __init__(
        self,
        spec: ModelSpec | ExternalModel,
        train: _Data,
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
                           num_train_samples=samples_count(train.samples), epochs=epochs,
                           data=data_kind(train.samples), task=train.objective.task,
                           custom_loss=train.objective.custom_loss)  # fmt: skip
        self.setup, active = apply_techniques(setup, list(techniques), History())
        self.train = train
        with process_settings(self.setup):
            self.live, _ = build_live_run(self.setup, active, train.samples, seed,
                                          objective=train.objective, names=train.names)  # fmt: skip
        self.initial = copy.deepcopy(self.live.model.state_dict())
        self.seed = seed
        self.compiled = False

    def warm_up(self) -> float:
        if self.setup.compile_mode and not self.compiled:
            self.compiled = True
            with process_settings(self.setup):
                return compile_warmup(self.live, self.train.samples)
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


__all__ = [
    "DEFAULT_KEEP",
    "SCHEDULES",
    "AutoRecipe",
    "Decision",
    "DecisionCache",
    "PriorDecision",
    "Probe",
    "auto_recipe",
    "decide",
    "schedule_for",
]
