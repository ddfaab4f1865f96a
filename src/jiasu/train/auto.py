"""`--recipe auto`: measure which exact and numeric techniques pay on *this* machine,
within a probe budget.

A recipe is built in two parts:

1. **Schedule** (approximate techniques that change the optimisation: batch size with
   learning-rate scaling, one-cycle, label smoothing): the settings that
   `benchmarks/train_mnist.py` found to reach the target accuracy fastest on MNIST
   (`recipes.SCHEDULES`), scaled to the dataset size. They are applied only to runs like
   the ones they were tuned on (`recipes.unlike_mnist`: 10-class classification of
   1×28×28 images on the task's loss, batches made by jiasu); any other run (a regression,
   text, a table, the user's DataLoader or loss) keeps its own batch size, learning rate
   and schedule, and the report says so.
2. **Probes** (exact and numeric techniques: placement, threads, data placement, fused
   steps, layout, precision, compilation, CUDA settings), in `PROBES` order: the cheap and
   most often paying ones first, compilation last; where a step takes 0.1 s or more
   (compute-bound), precision and layout first. Each is tried on top of what has been
   kept so far, against the current recipe in interleaved rounds (A/B, B/A, ...: drift
   hits both alike). Its losses must track the current recipe's within its exactness
   tolerance; then `auto_decide.decide` judges the step times (keep when the lower bound
   of the paired-ratio interval clears `MIN_SPEEDUP`, drop when the upper bound is below
   it, else this machine's earlier decision or `DEFAULT_KEEP`). For compilation the
   planned number of steps must also pass the break-even point
   ``compile_seconds / seconds_saved_per_step``.

**Budget** (`auto_budget`): the probes get `probe_budget_s` seconds, by default 10 % of
the planned training time (timed steps of the schedule-only recipe × steps per epoch ×
epochs; at least 2 s), counted after that timing. Each probe is sized to its share of
what is left (building its runs included); a probe whose smallest size does not fit
what is left, and every technique after the budget is spent, is reported "not probed",
and compilation is only tried when the time it took (or a guess) is left. The step ends
within the timing and the budget, unless steps run slower than they were timed.

Every technique is reported (`Probe`, in the train JSON under "probes" and in the
`jiasu train` table) with its outcome and why: kept (ratio and interval), dropped (no
gain, undecided, changes the loss, failed), not applicable, or not probed.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence

import torch

from jiasu.core.errors import ConfigError
from jiasu.core.recipe import Recipe
from jiasu.core.technique import Applicability
from jiasu.hardware.threads import default_threads
from jiasu.train.auto_budget import (
    COMPILE_GUESS_S,
    MIN_ROUNDS,
    PLAN_STEPS,
    PlannedTime,
    ProbeBudget,
    ProbeSize,
    check_budget,
    min_steps,
    size_probe,
)
from jiasu.train.auto_decide import (
    DEFAULT_KEEP,
    MIN_SPEEDUP,
    Decision,
    DecisionCache,
    PriorDecision,
    decide,
    decision_key,
)
from jiasu.train.auto_probe import (
    NOT_APPLICABLE,
    NOT_PROBED,
    Probe,
    ProbeContext,
    Runner,
    probe_technique,
)
from jiasu.train.data import Samples, samples_count
from jiasu.train.model_arg import ExternalModel, ModelSpec
from jiasu.train.objective import Objective
from jiasu.train.recipes import (
    SCHEDULES,
    TargetLength,
    length_for_target,
    schedule_for,
    unlike_mnist,
)
from jiasu.train.setup import TrainSetup, TrainTechnique
from jiasu.train.techniques import (
    ChannelsLast,
    Compile,
    CudaGraphs,
    CudnnBenchmark,
    DeviceData,
    DevicePlacement,
    FusedOptimizer,
    MixedPrecision,
    PinnedMemory,
    Threads,
)
from jiasu.ui.progress import TaskProgress, progress_enabled


def other_threads() -> Threads:
    """The intra-op thread count worth probing against torch's current one: every CPU
    this process may use when torch uses fewer, else half as many (at least 1).

    torch starts with one thread per CPU, so probing "all the CPUs" would time the same
    configuration twice. Fewer threads is what can pay: small models' operations are
    too short to split, and on a machine whose cores other processes also use, every
    parallel operation waits for its slowest thread (on the 2-CPU machine of
    benchmarks/RESULTS.md, under load, 1 thread trained the zoo's MLP and BERT several
    times faster than 2). Whether it pays here is measured, never assumed.
    """
    current, cpus = torch.get_num_threads(), default_threads()
    return Threads(cpus) if current < cpus else Threads(max(1, current // 2))


# A training step at least this long (seconds) is taken as bound by its arithmetic; the
# probes in COMPUTE_FIRST then go first (`_most_promising_first`).
COMPUTE_BOUND_STEP_S = 0.1
COMPUTE_FIRST = ("mixed_precision", "channels_last")

# Probed in this order, each on top of those kept before it, so that a small budget buys
# the likeliest gains: placement first (the rest is measured where training will run),
# then the thread count (on a busy machine it decides every other step time, so it is
# settled before they are timed), then what benchmarks/RESULTS.md measured to pay on
# CPUs (DEFAULT_KEEP: device_data 1.84× on the MLP, channels_last 1.38–2.03× on the CNN,
# fused_optimizer 1.11×), then the machine-dependent ones, and compilation and CUDA
# graphs, which compile first, last. A compute-bound step reorders them
# (`_most_promising_first`).
PROBES: tuple[Callable[[], TrainTechnique], ...] = (
    DevicePlacement,
    other_threads,
    DeviceData,
    ChannelsLast,
    FusedOptimizer,
    PinnedMemory,
    CudnnBenchmark,
    lambda: MixedPrecision("bf16"),
    Compile,
    CudaGraphs,
)


@dataclasses.dataclass(frozen=True)
class AutoRecipe:
    """The recipe auto built, every probe with its outcome, the schedule and the budget."""

    recipe: Recipe
    probes: tuple[Probe, ...]
    # the approximate techniques and why they are there, or why there are none
    schedule: tuple[str, ...]
    budget_s: float = 0.0  # the probe budget, seconds
    budget_why: str = ""  # "10% of the 52.1 s planned (...)" or "30 s, as given"
    elapsed_s: float = 0.0  # the whole auto step, seconds
    setup_s: float = 0.0  # of which timing the recipe without probes, before the budget
    # with a target metric: train until it is reached, checked `checks_per_epoch` times per
    # epoch, for at most `epochs` epochs (see `recipes.length_for_target`); else None
    target_length: TargetLength | None = None

    def kept(self) -> list[dict[str, str]]:
        return [{"name": t.describe(), "why": self._why(t.name)} for t in self.recipe.techniques]

    def dropped(self) -> list[dict[str, str]]:
        """Every probed technique not kept, with the reason (not applicable and not probed
        ones included)."""
        return [{"name": p.name, "reason": p.reason} for p in self.probes if not p.kept]

    def decisions(self) -> list[dict[str, str]]:
        """Every technique auto considered: name, outcome (kept, dropped, not applicable,
        not probed; "schedule" for the approximate part) and why."""
        rows = [{"name": p.name, "outcome": p.outcome, "reason": p.reason} for p in self.probes]
        probed = {p.name for p in self.probes}
        schedule = [t for t in self.recipe.techniques if t.name not in probed]
        if not schedule:
            return [*rows, {"name": "schedule", "outcome": "not applied",
                            "reason": "; ".join(self.schedule)}]  # fmt: skip
        return rows + [
            {"name": t.describe(), "outcome": "kept", "reason": self._why(t.name)} for t in schedule
        ]

    def budget_line(self) -> str:
        """One line for reports: the budget, why, and the time the step took."""
        return (
            f"probe budget {self.budget_s:.1f} s ({self.budget_why}); auto took "
            f"{self.elapsed_s:.1f} s, {self.setup_s:.1f} s of it timing the recipe without probes"
        )

    def _why(self, name: str) -> str:
        for probe in self.probes:
            if probe.name == name:
                return probe.reason
        return "schedule: " + "; ".join(self.schedule)


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
    extra_rounds_s: float = 4.0,
    probe_budget_s: float | None = None,
    decisions: DecisionCache | None = None,
    objective: Objective | None = None,
    names: tuple[str, ...] | None = None,
    target: float | None = None,
) -> AutoRecipe:
    """Build the recipe for training `spec` on `train` for `epochs` epochs on this machine.

    `probe_budget_s` bounds the probing (seconds of wall time, counted after the recipe
    without probes was timed); None means 10 % of the planned training time, estimated
    as the seconds per step of a few timed steps of the recipe without probes (after one
    warm-up step) × steps per epoch × `epochs`, and at least 2 s. Probes run
    in `probes` order (default `PROBES`); those left when the budget is spent are
    reported "not probed". Each probe is timed in up to `repeats` interleaved
    rounds of up to `probe_steps` steps against the recipe so far, fewer when its share of
    the budget left is smaller; an undecided probe gets more rounds, up to `max_repeats`
    and `extra_rounds_s` seconds, before the earlier decision in `decisions` (default:
    the user cache) or `DEFAULT_KEEP` settles it. Measured decisions are recorded there.
    `objective` is the task's loss and metrics (default: a classifier's); `names` orders
    dict batches of a streamed dataset. A progress bar names the technique being probed
    unless `quiet`.

    With a `target` metric value (e.g. an accuracy of 0.99), auto also chooses the run's
    length (`AutoRecipe.target_length`): train until the target is reached on the held-out
    data, checked 4 times per epoch, for at most 2× the epochs MNIST's schedule was tuned
    at when it applies (its one-cycle is sized from that cap), else at most 20 epochs.
    The budget is still planned from `epochs`.
    """
    started = time.perf_counter()
    given_s = check_budget(probe_budget_s)
    if target is not None and (
        isinstance(target, bool) or not isinstance(target, int | float) or not target > 0
    ):
        raise ConfigError(f"the target metric must be a positive number, got {target!r:.40}")
    device = device or torch.device("cpu")
    torch.manual_seed(seed)
    objective = objective or Objective()
    unlike = unlike_mnist(train, objective.task, custom_loss=objective.custom_loss)
    model = spec.build()
    schedule, why = schedule_for(model, samples_count(train), unlike=unlike)
    length = None if target is None else length_for_target(model, scheduled=bool(schedule))
    has_conv = any(isinstance(m, torch.nn.Conv2d) for m in model.modules())
    del model
    cache = decisions or DecisionCache()
    key = decision_key(spec, [t.describe() for t in schedule], batch_size, device)
    ctx = ProbeContext(spec, train, objective, names, epochs, batch_size, lr, optimizer,
                       device, seed, cache, key)  # fmt: skip
    made = [make() for make in probes]
    kept: list[TrainTechnique] = list(schedule)
    results: list[Probe] = []
    with TaskProgress(enabled=progress_enabled(quiet)) as bar:
        bar.start("auto: probing techniques", total=len(made))
        bar.advance(0, status="timing the recipe without probes")
        baseline = Runner(ctx, kept)
        step_s = baseline.step_seconds(min(PLAN_STEPS, probe_steps))
        candidates = _most_promising_first(made, has_conv=has_conv, step_s=step_s)
        setup_s = time.perf_counter() - started
        budget = ProbeBudget(given_s, PlannedTime(step_s, baseline.setup.steps_per_epoch, epochs))
        applies = {c.name: c.applies_to(baseline.setup) for c in candidates}
        likely = {name for name, answer in applies.items() if answer}
        del baseline
        sizes = _Sizes(probe_steps, repeats, max_repeats, extra_rounds_s)
        for index, candidate in enumerate(candidates):
            left = max(0.0, budget.left())
            bar.advance(0, status=f"{candidate.name} ({left:.0f} of {budget.seconds:.0f} s left)")
            ahead = sum(1 for c in candidates[index:] if c.name in likely)
            begun = budget.elapsed()
            probe = _probe_within(ctx, kept, candidate, budget, step_s, sizes, max(1, ahead),
                                  applies[candidate.name])  # fmt: skip
            probe = dataclasses.replace(probe, seconds=budget.elapsed() - begun)
            results.append(probe)
            if probe.kept:
                kept.append(candidate)
                step_s = (probe.step_ms_with or step_s * 1000) / 1000
            bar.advance(1, status=f"{candidate.name}: {probe.outcome}")
    # Order: probed (exact/numeric) techniques first, the schedule after them.
    ordered = [t for t in kept if t not in schedule] + schedule
    notes = tuple(f"{t.describe()} ({why})" for t in schedule) or (why,)
    return AutoRecipe(Recipe("auto", tuple(ordered)), tuple(results), notes, budget.seconds,
                      budget.why, time.perf_counter() - started, setup_s, length)  # fmt: skip


def _most_promising_first(
    candidates: list[TrainTechnique], *, has_conv: bool, step_s: float = 0.0
) -> list[TrainTechnique]:
    """`candidates` in order, with two measured exceptions:

    * channels_last before device_data on a convolutional model: there
      benchmarks/RESULTS.md measured channels_last 1.38–2.03× and device_data no gain
      (0.94–0.98×), the reverse of the MLP's;
    * a step of `COMPUTE_BOUND_STEP_S` or more is bound by its arithmetic, not by per-step
      overheads: the techniques that cut the arithmetic (`COMPUTE_FIRST`: lower precision,
      then the convolution layout) go first, right after device placement. A short
      training's budget may fit only one probe of such steps (BERT-mini at sequence 128,
      0.64 s a step on 2 cores: 3.2 s of budget, none probed in `PROBES` order, auto
      kept nothing); there bf16 gave 1.63× on an AMX Xeon, fused optimizer steps and
      data placement a few percent. A technique that cannot apply (bf16 on a CPU without
      bf16 units) says so at no cost wherever it stands.
    """
    names = [c.name for c in candidates]
    ordered = list(candidates)
    if has_conv and "channels_last" in names and "device_data" in names:
        layout, data = names.index("channels_last"), names.index("device_data")
        if layout > data:
            ordered.insert(data, ordered.pop(layout))
    if step_s >= COMPUTE_BOUND_STEP_S:
        first = [c for name in COMPUTE_FIRST for c in ordered if c.name == name]
        rest = [c for c in ordered if c not in first]
        placed = [c for c in rest if c.name == "device_placement"]
        ordered = placed + first + [c for c in rest if c not in placed]
    return ordered


@dataclasses.dataclass(frozen=True)
class _Sizes:
    """The largest probe asked for; the budget may size one smaller."""

    steps: int
    rounds: int
    max_rounds: int
    extra_s: float


def _probe_within(
    ctx: ProbeContext,
    kept: Sequence[TrainTechnique],
    candidate: TrainTechnique,
    budget: ProbeBudget,
    step_s: float,
    sizes: _Sizes,
    ahead: int,
    applies_alone: Applicability,
) -> Probe:
    """Probe `candidate` if it applies and fits its share (1/`ahead`) of the budget left.

    `applies_alone` is its answer on the run without probes: with the budget spent, a
    technique that cannot apply here (CUDA graphs on a CPU) is still reported as such."""
    name = candidate.name
    if budget.left() <= 0:
        if not applies_alone:
            return Probe(name, False, applies_alone.reason, basis=NOT_APPLICABLE)
        return Probe(name, False, budget.spent_reason(), basis=NOT_PROBED)
    building = time.perf_counter()
    current = Runner(ctx, kept)
    build_s = time.perf_counter() - building  # the trial's run takes about as long to build
    answer = candidate.applies_to(current.setup)
    if not answer:
        return Probe(name, False, answer.reason, basis=NOT_APPLICABLE)
    if _effective(candidate.configure(current.setup)) == _effective(current.setup):
        return Probe(name, False, (
            f"{candidate.describe()} changes nothing in this run (it is already so here)"
        ), basis=NOT_APPLICABLE)  # fmt: skip
    left = budget.left() - build_s
    # before building it: building a compiled run imports the compiler (seconds)
    if candidate.configure(current.setup).compile_mode and not current.setup.compile_mode:
        known = ctx.cache.compile_seconds(ctx.key)
        expected = known if known is not None else COMPILE_GUESS_S
        if expected > left:
            source = "took last time on this machine" if known is not None else "may take"
            return Probe(name, False, (
                f"not probed: compiling this model {source} about {expected:.0f} s, more than "
                f"the {max(0.0, left):.1f} s left of the probe budget ({budget.seconds:.1f} s)"
            ), basis=NOT_PROBED)  # fmt: skip
        left -= expected
    size = _size(max(0.0, left) / ahead, step_s, sizes) or _size(left, step_s, sizes, smallest=True)
    if size is None:
        needed = _smallest(step_s, sizes)
        return Probe(name, False, (
            f"not probed: its smallest measurement needs about {needed.seconds(step_s):.1f} s, "
            f"and {max(0.0, left):.1f} s of the probe budget ({budget.seconds:.1f} s) were left"
        ), basis=NOT_PROBED)  # fmt: skip
    return probe_technique(ctx, current, candidate, Runner(ctx, [*kept, candidate]), size,
                           budget.left)  # fmt: skip


def _smallest(step_s: float, sizes: _Sizes) -> ProbeSize:
    """The smallest probe at `step_s` a step: `MIN_ROUNDS` rounds of `min_steps` steps."""
    rounds = min(MIN_ROUNDS, sizes.rounds)
    return ProbeSize(min(min_steps(step_s), sizes.steps), rounds, 0.0, rounds)


def _effective(setup: TrainSetup) -> TrainSetup:
    """`setup` with the thread count it will run at (None means torch's current one)."""
    return dataclasses.replace(setup, num_threads=setup.num_threads or torch.get_num_threads())


def _size(
    share_s: float, step_s: float, sizes: _Sizes, *, smallest: bool = False
) -> ProbeSize | None:
    if smallest:  # all that is left for the smallest, or nothing
        size = _smallest(step_s, sizes)
        return size if size.seconds(step_s) <= share_s else None
    return size_probe(share_s, step_s, steps=sizes.steps, rounds=sizes.rounds,
                      extra_s=sizes.extra_s, max_rounds=sizes.max_rounds)  # fmt: skip


__all__ = [
    "DEFAULT_KEEP",
    "MIN_SPEEDUP",
    "PROBES",
    "SCHEDULES",
    "AutoRecipe",
    "Decision",
    "DecisionCache",
    "PriorDecision",
    "Probe",
    "auto_recipe",
    "decide",
    "other_threads",
    "schedule_for",
]
