"""`optimize`: build every candidate, verify it, measure it, and pick the fastest within budget.

1. Each registered backend (or those named) proposes candidates; one whose runtime is not
   installed, or that does not take this kind of model, is recorded as *skipped*.
2. The baseline (eager fp32, or the ONNX file run unoptimized) gives the reference
   outputs on the validation inputs: the user's data (labelled or not), or, with no data
   at all, inputs generated from the signature — for timing and exactness only.
3. Each candidate is built (export, quantization, compilation — timed), run on the same
   validation inputs and judged (`jiasu.infer.verify`): exact/numeric ones against their
   tolerance, approximate ones against the budget on the task's metric (accuracy, MSE or
   MAE with labels; agreement with fp32 without); without data they are not accepted.
   A build or run that raises is *failed*, and the run
   goes on.
4. Every built candidate, rejected ones included, is screened with the measurement harness
   (`jiasu.measure.compare`: warm-up, interleaved repeats, medians) at the run's batch size
   — unless every built one is accepted and would be a finalist anyway.
5. The baseline and the accepted candidates near the top of the screening are written out
   as artifacts and timed again, each loaded by `jiasu.load` alone in its own process
   (`jiasu.infer.isolation`): runtimes timed side by side in one process disturb each
   other's thread pools, and a deployed model runs alone.
6. `select` picks the fastest of those finalists, preferring the more exact where the
   difference is within the measured noise; `--out` gets its artifact and the report.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import math
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jiasu.core.errors import ConfigError, one_line
from jiasu.core.signature import batch_size, take, tile
from jiasu.core.task import Task
from jiasu.core.technique import Exactness
from jiasu.hardware.threads import default_threads, threads
from jiasu.infer.artifact import save_artifact
from jiasu.infer.backends import BACKENDS, BuildContext, Built, Candidate, ExportFailed, Runner
from jiasu.infer.backends.base import (
    LARGE_MODEL_PARAMETERS,
    ModelSource,
    count_parameters,
    timed,
)
from jiasu.infer.isolation import (
    FAR_BEHIND,
    FAR_BEHIND_SLOW,
    PER_BACKEND,
    finalists,
    save_batch,
)
from jiasu.infer.report import CandidateResult, OptimizeResult
from jiasu.infer.select import TARGETS, Target, select
from jiasu.infer.verify import (
    UNVERIFIED_REASON,
    AccuracyBudget,
    Verification,
    default_budget,
    judge,
    verify,
)
from jiasu.measure.benchmark import (
    BenchmarkError,
    CaseResult,
    Comparison,
    Measurement,
    compare,
)
from jiasu.measure.clock import PhaseClock
from jiasu.measure.environment import capture_environment
from jiasu.measure.isolated import SLOW_CALL_S, Isolated, compare_isolated
from jiasu.measure.stats import Summary, paired_ratio_interval
from jiasu.ui.progress import TaskProgress

BACKEND_ORDER = ("torch", "torch_optimized", "compile", "onnxruntime", "openvino")
DEFAULT_BATCH = {"latency": 1, "throughput": 256}
# Interleaved rounds in the screening, at least: enough for a median that orders the
# candidates; on a BERT-base (0.2 s a call, 7 candidates) 20 rounds took minutes.
MIN_SCREENING_REPEATS = 7
# A first verification call at the run's batch this slow (seconds, cold) makes the next
# call of that batch timed: warm, it can stand for the screening (`_evaluate`, `_measure`).
TIMED_VERIFICATION_S = SLOW_CALL_S / 4
# ... and where it does, a run's batch of this many or more is the verification's batch
# too (no other shape than the run's and the last few rows'; see `_evaluate`).
SAME_SHAPE_BATCH = 8
BUILD_SHARE = 0.7  # of a time budget, for building and verifying; the rest for timing
MAX_ROUNDS_ALONE, MIN_ROUNDS_ALONE = 10, 5  # rounds of blocks in the timing alone
# ... and 3 where a call takes SLOW_CALL_S or more: each round is then two calls of seconds
# a case (ViT-B/16 at batch 32, ~3.5 s a call: 5 rounds of 4 finalists were 278 s of a
# 338 s search).
MIN_ROUNDS_ALONE_SLOW = 3
ROUNDS_TIME_FACTOR = 3.0  # fewer rounds where the minimum blocks pass 3x measure_s


@dataclasses.dataclass(frozen=True)
class OptimizeConfig:
    """How to search. `batch_size` None means 1 for latency and 256 for throughput."""

    target: Target = "latency"
    batch_size: int | None = None
    # None: the task's default (`default_budget`): half a point of accuracy or of top-1
    # agreement, 1% more error (relative) for MSE and MAE, whose units are the user's.
    budget: AccuracyBudget | None = None
    backends: tuple[str, ...] | None = None  # None: every registered backend
    threads: int | None = None  # None: every CPU this process may use
    measure_s: float = 6.0  # rough wall time for all timed calls together
    # Time the finalists alone, each in its own process (False: the screening decides).
    isolate: bool = True
    finalists: int = 8  # at most this many besides the baseline get the isolated timing
    warmup: int = 5
    eval_batch_size: int = 256
    generated_samples: int = 64  # inputs made from the signature when no data is given
    # Wall seconds for the whole search; None: no limit. A soft limit: no candidate starts
    # building once BUILD_SHARE of it is spent (the rest is for timing the built ones);
    # the exact candidates are built first, quantized ones (minutes each) after.
    time_budget_s: float | None = None
    # Candidates this close (a fraction) to the fastest are a tie, won by the more exact:
    # a difference below the run-to-run noise should not buy an int8 model over fp32.
    tie_margin: float = 0.03

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise ConfigError(f"target {self.target!r} is unknown; use latency or throughput")
        for name in ("batch_size", "threads"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ConfigError(f"{name} {value!r} is invalid; use a whole number >= 1")
        for name in self.backends or ():
            BACKENDS.get(name)  # unknown names fail here, with the known ones listed
        if not self.measure_s > 0:
            raise ConfigError(f"measure_s {self.measure_s!r} is invalid; use seconds > 0")
        limit = self.time_budget_s
        if limit is not None and (
            isinstance(limit, bool)
            or not isinstance(limit, int | float)
            or not 0 < limit < math.inf
        ):
            raise ConfigError(
                f"time budget {limit!r} is invalid; use seconds > 0 (or none for no limit)"
            )

    @property
    def resolved_batch_size(self) -> int:
        return self.batch_size or DEFAULT_BATCH[self.target]


@dataclasses.dataclass(frozen=True)
class _Built:
    candidate: Candidate
    built: Built
    result: CandidateResult
    warm_call_s: float | None = None  # a warm call at the run's batch in its verification
    outputs: np.ndarray | None = None  # on the validation inputs, (N, ...)


def optimize(
    source: ModelSource,
    inputs: Any = None,
    labels: np.ndarray | None = None,
    calibration: Any = None,
    config: OptimizeConfig | None = None,
    *,
    out: Path | None = None,
    task: Task | None = None,
    metric: str | None = None,
    progress: TaskProgress | None = None,
) -> OptimizeResult:
    """Find the fastest candidate within budget; with `out`, write its artifact and report.

    `inputs` are held-out samples in the source's signature (an array for a one-input
    model, a tuple in order or a dict by name), `labels` (N,) or (N, k) their targets or
    None; `calibration`, disjoint from them, calibrates static int8 (default: the first
    half of `inputs`, which then verify on the other half). With no inputs at all, they
    are generated from the signature for timing only: nothing approximate is accepted.

    >>> config = OptimizeConfig("throughput")
    >>> result = optimize(source, x_val, y_val, x_cal, config)  # doctest: +SKIP
    >>> result.chosen.name  # doctest: +SKIP
    'openvino'
    """
    with tempfile.TemporaryDirectory(prefix="jiasu-optimize-") as tmp:
        found = search(
            source, inputs, labels, calibration, config, Path(tmp),
            out=out, task=task, metric=metric, progress=progress,
        )  # fmt: skip
    return found.result


@dataclasses.dataclass(frozen=True)
class Found:
    """A search's result and the chosen candidate, built (its files in the workdir)."""

    result: OptimizeResult
    winner: Built


def search(
    source: ModelSource,
    inputs: Any,
    labels: np.ndarray | None,
    calibration: Any,
    config: OptimizeConfig | None,
    workdir: Path,
    *,
    out: Path | None = None,
    task: Task | None = None,
    metric: str | None = None,
    progress: TaskProgress | None = None,
) -> Found:
    """`optimize`, building in `workdir` (which must outlive the returned winner)."""
    config = config or OptimizeConfig()
    if out is not None:  # a folder that cannot be written fails now, not after the timing
        from jiasu.core.outputs import Output, check_outputs
        from jiasu.infer.artifact import FOLDER

        check_outputs([Output("out", Path(out), FOLDER)])
    signature = source.signature
    verified = inputs is not None
    if metric is not None and labels is None:
        raise ConfigError(
            f"metric {metric} needs labels; pass labels, or leave the metric unset to verify "
            "by agreement with eager fp32"
        )
    if inputs is None:
        if labels is not None:
            raise ConfigError("labels were given without the inputs they label; pass both")
        data = signature.generate(config.generated_samples, seed=1)
        cal = None
    else:
        data = signature.check(inputs, what="validation input")
        cal = (
            signature.check(calibration, what="calibration input")
            if calibration is not None
            else None
        )
        if batch_size(data) == 0:
            raise ConfigError("the validation inputs hold no samples; pass at least one")
        if labels is not None:
            labels = np.asarray(labels)
            if labels.shape[:1] != (batch_size(data),):
                raise ConfigError(
                    f"labels have shape {labels.shape}; need one per input sample, "
                    f"({batch_size(data)}, ...)"
                )
        if cal is None and batch_size(data) >= 2:  # calibrate on one half, verify on the other
            half = batch_size(data) // 2
            cal, data = take(data, slice(0, half)), take(data, slice(half, None))
            labels = labels[half:] if labels is not None else None
    n_threads = config.threads or default_threads()
    batch = config.resolved_batch_size
    clock = PhaseClock()
    with threads(n_threads):
        ctx = BuildContext(source, workdir, n_threads, batch, config.target, cal)
        ctx.large = count_parameters(source) >= LARGE_MODEL_PARAMETERS
        ctx.named = frozenset(config.backends or ())
        baseline, others, skipped = _candidates(ctx, config.backends)
        bar = progress or TaskProgress(enabled=False)
        bar.start("building and verifying", total=1 + len(others))
        with clock.phase("baseline"):
            base = _build_baseline(baseline, ctx)
            started = time.perf_counter()
            evaluated = _evaluate(base.runner, data, config.eval_batch_size, batch)
            reference = evaluated.outputs
            # Seconds per call at the run's batch, guessed from the validation pass: sizes
            # the timing alone where no screening measured the calls.
            call_guess_s = evaluated.warm_call_s or (
                (time.perf_counter() - started) / max(1, batch_size(data)) * batch
            )
        task = task or Task.infer(labels, reference.shape, metric)
        budget = config.budget or default_budget(task)
        check = Check(labels, task, budget, verified)
        bar.advance(1, status=baseline.name)
        base_result = _baseline_result(baseline, base, reference, check)
        verified_base = _Built(baseline, base, base_result, evaluated.warm_call_s, reference)
        built, records = _build_all(
            others, ctx, data, reference, check, config, bar, clock, verified_base
        )
        measure = functools.partial(_measure, verified_base, built, data, batch, config, bar)
        # Every built candidate is accepted and a finalist anyway: screening would choose
        # nothing (BERT-base at batch 32: 145 s of a 514 s search).
        screen = not (config.isolate and _all_finalists(built, config.finalists))
        if screen:
            with clock.phase("screening"):
                records.update(measure())
        else:
            records[base_result.name] = base_result
            records.update({b.candidate.name: b.result for b in built})
        eligible = set(records)
        screened_baseline = records[baseline.name].measurement  # None when not screened
        if config.isolate:
            try:
                with clock.phase("timing alone"):
                    final = _measure_alone(
                        records, baseline.name, base, built, ctx, data, config, bar, task,
                        screened=screen, call_guess_s=call_guess_s,
                    )  # fmt: skip
                records.update(final)
                eligible = set(final)
            except BenchmarkError as exc:  # the baseline cannot run alone: keep the screening
                if not screen:
                    with clock.phase("screening"):
                        records.update(measure())
                    screened_baseline = records[baseline.name].measurement
                records[baseline.name] = dataclasses.replace(
                    records[baseline.name],
                    reason=f"{records[baseline.name].reason}; timed alone it failed, so the "
                    f"choice rests on the screening ({exc})",
                )
        ordered = [records[c.name] for c in [baseline, *others]] + skipped
        trials = [r.trial() for r in ordered if r.name in eligible]
        chosen = select(trials, config.target, tie_margin=config.tie_margin) or baseline.name
        result = OptimizeResult(
            model=source.description,
            signature=signature,
            target=config.target,
            batch_size=batch,
            threads=n_threads,
            budget=budget,
            validation_samples=batch_size(data),
            candidates=tuple(ordered),
            baseline_name=baseline.name,
            chosen_name=chosen,
            environment=capture_environment("cpu"),
            screening_baseline=(
                screened_baseline if records[baseline.name].timing != "screening" else None
            ),
            task=task,
            verified=verified,
            output=source.output,
            onnx_export=dict(ctx.onnx_export),
            phase_s=clock.seconds(),
        )
        winner = base if chosen == baseline.name else _find(built, chosen).built
        if out is not None:
            save_artifact(
                out,
                result.chosen.candidate,
                winner.save,
                signature=signature,
                output=source.output,
                task=task.to_dict(),
                report=result.to_dict(),
            )
    return Found(result, winner)


@dataclasses.dataclass(frozen=True)
class Check:
    """How every candidate is judged in a run: labels (or None), task, budget, and whether
    the inputs were the user's (False: generated, so nothing approximate is accepted)."""

    labels: np.ndarray | None
    task: Task
    budget: AccuracyBudget
    verified: bool

    def verify(self, reference: np.ndarray, outputs: np.ndarray) -> Verification:
        return verify(reference, outputs, self.labels, self.task)

    def judge(self, exactness: Exactness, result: Verification) -> tuple[bool, str]:
        return judge(exactness, result, self.budget, self.task, verified=self.verified)


def _candidates(
    ctx: BuildContext, names: Sequence[str] | None
) -> tuple[Candidate, list[Candidate], list[CandidateResult]]:
    """(baseline, the other candidates, skipped records), in a stable order."""
    baseline_backend = "torch" if ctx.source.kind == "torch" else "onnxruntime"
    wanted = list(names) if names else [n for n in BACKEND_ORDER if n in BACKENDS]
    wanted += [n for n in BACKENDS.names() if not names and n not in wanted]
    if baseline_backend not in wanted:
        wanted.insert(0, baseline_backend)
    found: list[Candidate] = []
    skipped: list[CandidateResult] = []
    for name in dict.fromkeys(wanted):
        backend = BACKENDS.get(name)()
        ok = backend.available(ctx.source)
        if not ok:
            if name == baseline_backend:
                raise ConfigError(f"the baseline backend {name} cannot run: {ok.reason}")
            placeholder = Candidate(name, name, {}, Exactness.EXACT)
            skipped.append(CandidateResult(placeholder, "skipped", ok.reason))
            continue
        try:
            proposed = backend.candidates(ctx)
            if not proposed:
                placeholder = Candidate(name, name, {}, Exactness.EXACT)
                skipped.append(CandidateResult(placeholder, "skipped", backend.why_none(ctx)))
            found.extend(proposed)
        except Exception as exc:  # a backend that cannot even list its options
            placeholder = Candidate(name, name, {}, Exactness.EXACT)
            skipped.append(CandidateResult(placeholder, "failed", one_line(exc)))
    baseline_name = "torch-eager" if ctx.source.kind == "torch" else "onnxruntime-reference"
    baseline = _find_candidate(found, baseline_name)
    return baseline, [c for c in found if c.name != baseline_name], skipped


def _find_candidate(candidates: Sequence[Candidate], name: str) -> Candidate:
    return next(c for c in candidates if c.name == name)


def _find(built: Sequence[_Built], name: str) -> _Built:
    return next(b for b in built if b.candidate.name == name)


def _build_baseline(candidate: Candidate, ctx: BuildContext) -> Built:
    try:
        return BACKENDS.get(candidate.backend)().build(candidate, ctx)
    except Exception as exc:
        raise ConfigError(f"the baseline {candidate.name} cannot run: {one_line(exc)}") from exc


@dataclasses.dataclass(frozen=True)
class _Evaluated:
    outputs: np.ndarray  # (N, ...) for all inputs
    warm_call_s: float | None  # one warm call at the run's batch, timed, where one was


def _evaluate(runner: Runner, inputs: tuple[np.ndarray, ...], step: int, first: int) -> _Evaluated:
    """The outputs for all inputs: the first `first` of them in one call (the run's batch,
    so that call also warms the runner up at the shape the screening times), the rest in
    batches of `step`. Where that first call took `TIMED_VERIFICATION_S` or more and the
    inputs hold another `first`, the next call is of `first` too, and timed: a warm call at
    the run's batch, which `_measure` may take as the screening."""
    n = batch_size(inputs)
    first = min(first, n)

    def call(start: int, stop: int) -> np.ndarray:
        return np.asarray(runner(*take(inputs, slice(start, stop))), dtype=np.float32)

    outputs, cold_s = timed(lambda: call(0, first))
    done, warm_s = [outputs], None
    if cold_s >= TIMED_VERIFICATION_S and n >= 2 * first:
        outputs, warm_s = timed(lambda: call(first, 2 * first))
        done.append(outputs)
    if cold_s >= TIMED_VERIFICATION_S and first >= SAME_SHAPE_BATCH:
        # A slow model's calls at the run's batch already fill the cores, and a new shape
        # costs some runners a first call: OpenVINO compiles a dynamic shape at it, and a
        # batch split over its streams runs that call one part at a time. ViT-B/16 b32
        # with data, build and verify: openvino-fp32 29.4 -> 25.1 s, the search 314 -> 299 s.
        step = first
    start = first * len(done)
    done += [call(i, min(i + step, n)) for i in range(start, n, step)]
    return _Evaluated(np.concatenate(done, axis=0), warm_s)


def _build_all(
    candidates: Sequence[Candidate],
    ctx: BuildContext,
    inputs: tuple[np.ndarray, ...],
    reference: np.ndarray,
    check: Check,
    config: OptimizeConfig,
    bar: TaskProgress,
    clock: PhaseClock,
    baseline: _Built | None = None,
) -> tuple[list[_Built], dict[str, CandidateResult]]:
    """Build and verify each candidate: the built ones, and records of those that were
    not built or failed. Exact and numeric candidates are built first: quantizing takes
    minutes on a large model, and a time budget should buy the cheap ones first."""
    built: list[_Built] = []
    failed: dict[str, CandidateResult] = {}
    limit = config.time_budget_s
    for candidate in sorted(candidates, key=lambda c: c.exactness is Exactness.APPROXIMATE):
        if limit is not None and clock.elapsed() >= BUILD_SHARE * limit:
            reason = (
                f"not built: {clock.elapsed():.3g} s of the search's {limit:.3g} s time "
                "budget were spent before its turn; raise the time budget to try it"
            )
            failed[candidate.name] = CandidateResult(candidate, "skipped", reason)
            bar.advance(1, status=candidate.name)
            continue
        if candidate.skip is not None:
            failed[candidate.name] = CandidateResult(candidate, "skipped", candidate.skip)
            bar.advance(1, status=candidate.name)
            continue
        if not check.verified and candidate.exactness is Exactness.APPROXIMATE:
            # It could not be accepted, and building one (quantizing) can take minutes.
            failed[candidate.name] = CandidateResult(candidate, "rejected", UNVERIFIED_REASON)
            bar.advance(1, status=candidate.name)
            continue
        verified = [baseline, *built] if baseline is not None else built
        twin = next((b for b in verified if b.candidate.name == candidate.same_outputs_as), None)
        with clock.phase(f"build and verify {candidate.name}"):
            item = _build_and_verify(candidate, ctx, inputs, reference, check, config, twin)
        if isinstance(item, _Built):
            built.append(item)
        else:
            failed[candidate.name] = item
        bar.advance(1, status=candidate.name)
    return built, failed


def _build_and_verify(
    candidate: Candidate,
    ctx: BuildContext,
    inputs: tuple[np.ndarray, ...],
    reference: np.ndarray,
    check: Check,
    config: OptimizeConfig,
    twin: _Built | None = None,
) -> _Built | CandidateResult:
    """Build `candidate` and verify it on `inputs`; where it claims the outputs of `twin`
    (`Candidate.same_outputs_as`), one batch that reproduces them bit for bit lets
    `twin`'s verification stand for its own (ViT-B/16 at batch 1: 19 s saved)."""
    try:
        built = BACKENDS.get(candidate.backend)().build(candidate, ctx)
    except ExportFailed as exc:
        return CandidateResult(candidate, "failed", str(exc))
    except Exception as exc:  # a backend that cannot build this model must not stop the run
        return CandidateResult(candidate, "failed", f"build failed: {one_line(exc)}")
    batch, n, note = ctx.batch_size, batch_size(inputs), ""
    try:
        evaluated = None
        if twin is not None and twin.outputs is not None and twin.result.verification:
            # The first batch only (computed as the twin computed it: alone, at the run's
            # batch), and a second one where a call is slow, for the screening's timing.
            head = _evaluate(
                built.runner, take(inputs, slice(0, 2 * batch)), config.eval_batch_size, batch
            )
            first = min(batch, n)
            if np.array_equal(head.outputs[:first], twin.outputs[:first]):
                evaluated, verification = head, twin.result.verification
                note = (
                    f" (as {twin.candidate.name}'s: the same outputs, bit for bit, on the "
                    f"first {first} inputs)"
                )
        if evaluated is None:
            evaluated = _evaluate(built.runner, inputs, config.eval_batch_size, batch)
            verification = check.verify(reference, evaluated.outputs)
    except Exception as exc:
        return CandidateResult(
            candidate, "failed", f"inference failed: {one_line(exc)}", built.export_s
        )
    ok, reason = check.judge(candidate.exactness, verification)
    reason += note
    result = CandidateResult(
        candidate,
        "accepted" if ok else "rejected",
        reason,
        export_s=built.export_s,
        compile_s=built.compile_s,
        verification=verification,
    )
    outputs = evaluated.outputs if len(evaluated.outputs) == n else None
    return _Built(candidate, built, result, evaluated.warm_call_s, outputs)


def _baseline_result(
    candidate: Candidate, built: Built, reference: np.ndarray, check: Check
) -> CandidateResult:
    return CandidateResult(
        candidate,
        "accepted",
        "baseline: the reference every candidate is compared with",
        export_s=built.export_s,
        compile_s=built.compile_s,
        verification=check.verify(reference, reference),
    )


def _all_finalists(built: Sequence[_Built], limit: int) -> bool:
    """Whether every built candidate is accepted and would be a finalist whatever the
    screening measured (at most `PER_BACKEND` of each runtime, `limit` in all)."""
    if any(b.result.verdict != "accepted" for b in built):
        return False  # a rejected one is screened: its speed is evidence for the budget
    per_backend = collections.Counter(b.candidate.backend for b in built)
    return len(built) <= limit and all(n <= PER_BACKEND for n in per_backend.values())


def _measure(
    baseline: _Built,
    built: Sequence[_Built],
    inputs: tuple[np.ndarray, ...],
    batch: int,
    config: OptimizeConfig,
    bar: TaskProgress,
) -> dict[str, CandidateResult]:
    """Time every built candidate against the verified `baseline`, interleaved, at batch
    size `batch`."""
    base_result = baseline.result
    everyone = {b.candidate.name: b for b in (baseline, *built)}
    x = tile(inputs, batch)
    cases = {name: functools.partial(b.built.runner, *x) for name, b in everyone.items()}
    bar.start(f"measuring at batch {batch}", total=1)
    share = 0.4 if config.isolate else 1.0  # the isolated timing gets the rest
    warm_s = {name: b.warm_call_s for name, b in everyone.items()}
    warmed = batch_size(inputs) >= batch  # each ran a batch of this shape in its verification
    if config.isolate and all(s is not None for s in warm_s.values()):
        # Each case's verification timed one warm call at this batch already (only where a
        # call is slow): if they are slow on the whole, that call is the screening.
        seconds = {name: float(s or 0.0) for name, s in warm_s.items()}
        probe = _Probe(MIN_SCREENING_REPEATS, sum(seconds.values()), seconds, {})
    else:
        # Every runner already ran a batch of this shape in its verification, unless the
        # validation set is smaller than the batch: then `_repeats` warms each up first.
        probe = _repeats(cases, config.measure_s * share, warm_up=not warmed)
    # `probe` timed one call of each case. Where every call is slow and the finalists are
    # timed again alone, that timed call is the screening: it only picks the finalists, and
    # more rounds of calls of seconds cost minutes (ViT-B/16 at batch 32 with data: 3 more
    # rounds of 8 cases at ~2.5 s were 120 s of a 363 s search; BERT-base at batch 32: 5
    # more calls of 8 cases at ~1.5 s were a minute). Fast ones get `MIN_SCREENING_REPEATS`
    # rounds or more.
    slow = _slow_on_the_whole(list(probe.seconds.values()))  # each case is warm by now
    if slow and config.isolate:
        comparison = probe.comparison(base_result.name, batch)
    else:
        # Warmed by their verification, cases of a round of half a second or more get one
        # call to re-prime the caches, not `config.warmup` (ViT-B/16 at batch 1: 8 s).
        long_round = warmed and probe.round_s >= SLOW_CALL_S
        comparison = compare(
            cases,
            baseline=base_result.name,
            warmup=0 if slow else 1 if long_round else config.warmup,
            repeats=probe.repeats,
            items_per_call=batch,
            interleave=True,
        )
    bar.advance(1)
    previous = {name: b.result for name, b in everyone.items()}
    return screened_records(comparison, previous, "screening" if config.isolate else "interleaved")


def _slow_on_the_whole(call_s: Sequence[float]) -> bool:
    """Whether calls of these seconds (one per case) take `SLOW_CALL_S` or more on average:
    the screening is then one call each, and finalists are kept within `FAR_BEHIND_SLOW`."""
    return bool(call_s) and sum(call_s) >= SLOW_CALL_S * len(call_s)


def screened_records(
    comparison: Comparison, previous: Mapping[str, CandidateResult], timing: str
) -> dict[str, CandidateResult]:
    """The records of `previous` with the figures of an interleaved `comparison` (each
    speedup against the baseline in the same comparison, its interval from the rounds)."""
    base_m = comparison.results[comparison.baseline].measurement
    out: dict[str, CandidateResult] = {}
    for name, record in previous.items():
        case = comparison.results[name]
        if case.measurement is None:
            out[name] = dataclasses.replace(
                record, verdict="failed", reason=f"measurement failed: {case.error}"
            )
        else:
            # the calls ran in rounds, one call of every case per round: pair them
            out[name] = dataclasses.replace(
                record,
                measurement=case.measurement,
                speedup=case.speedup,
                speedup_interval=_interval(base_m, case.measurement.seconds, case.speedup),
                timing=timing,
                versus=timing,
            )
    return out


def _measure_alone(
    records: Mapping[str, CandidateResult],
    baseline: str,
    base: Built,
    built: Sequence[_Built],
    ctx: BuildContext,
    inputs: tuple[np.ndarray, ...],
    config: OptimizeConfig,
    bar: TaskProgress,
    task: Task,
    *,
    screened: bool,
    call_guess_s: float,
) -> dict[str, CandidateResult]:
    """Time the finalists again, each alone in its own process; return their new records.

    A finalist whose artifact cannot be written (a torch model passed as a Python object
    cannot be rebuilt elsewhere) is timed in this process, in blocks, and says so. One
    whose artifact fails to load or run alone is *failed*: it would fail for the user too.
    """
    batch = ctx.batch_size
    if screened:
        timed_s = [
            r.measurement.median_s
            for r in records.values()
            if r.timing == "screening" and r.measurement is not None
        ]
        far = FAR_BEHIND_SLOW if _slow_on_the_whole(timed_s) else FAR_BEHIND
        names = finalists(list(records.values()), baseline, config.target, config.finalists, far)
    else:  # `_all_finalists`: every built candidate
        names = [baseline, *(b.candidate.name for b in built)]
    builds = {baseline: base, **{b.candidate.name: b.built for b in built}}
    folder = ctx.workdir / "finalists"
    folder.mkdir()
    x = tile(inputs, batch)
    saved_inputs = save_batch(x, folder / "inputs.npz")
    # The workers may import the model's factory only when the user named it in this run.
    own_factory = (ctx.source.reference or {}).get("kind") == "factory"
    cases: dict[str, Callable[[], object] | Isolated] = {}
    timing: dict[str, str] = {}
    out: dict[str, CandidateResult] = {}
    for name in names:
        record = records[name]
        try:
            path = save_artifact(
                folder / name,
                record.candidate,
                builds[name].save,
                signature=ctx.signature,
                output=ctx.source.output,
                task=task.to_dict(),
                report={},
            )
        except ConfigError:  # cannot be rebuilt in another process: time it here
            cases[name] = functools.partial(builds[name].runner, *x)
            timing[name] = "blocks"
            continue
        except Exception as exc:  # what cannot be saved cannot be shipped
            if name == baseline:
                raise BenchmarkError(f"its artifact cannot be written: {one_line(exc)}") from exc
            out[name] = dataclasses.replace(
                record, verdict="failed", reason=f"its artifact cannot be written: {one_line(exc)}"
            )
            continue
        factory = "jiasu.infer.isolation:timed_predictor"
        kwargs = {"directory": str(path), "inputs": saved_inputs, "trust_code": own_factory}
        cases[name] = Isolated(factory, kwargs, threads=ctx.threads)
        timing[name] = "isolated"
    rounds = _rounds(records, list(cases), config.measure_s, call_guess_s)
    bar.start("timing the finalists, each alone", total=rounds * len(cases))
    comparison = compare_isolated(
        cases,
        baseline=baseline,
        seconds=config.measure_s * 0.6,
        rounds=rounds,
        warmup=config.warmup,
        items_per_call=batch,
        progress=lambda _name: bar.advance(1),
        lean=True,
    )
    out.update(final_records(comparison, records, timing))
    return out


def _rounds(
    records: Mapping[str, CandidateResult],
    names: Sequence[str],
    measure_s: float,
    call_guess_s: float = 0.0,
) -> int:
    """Rounds for the timing alone: 10 short blocks per case, so slow drift of the machine
    hits all alike; down to 5 where even the shortest blocks (a warm-up and 3 timed calls,
    at the screening's medians, else at `call_guess_s`) would run well past the run's
    measuring time (a BERT-base at 0.2 s a call: 10 rounds of 6 finalists took minutes),
    and down to `MIN_ROUNDS_ALONE_SLOW` where a call takes `SLOW_CALL_S` or more (its
    blocks are 2 timed calls, not re-warmed)."""
    per_round, slowest = 0.0, 0.0
    for name in names:
        m = records[name].measurement
        call_s = m.median_s if m is not None else call_guess_s
        slowest = max(slowest, call_s)
        per_round += (2 if call_s >= SLOW_CALL_S else 4) * call_s
    if per_round <= 0:
        return MAX_ROUNDS_ALONE
    floor = MIN_ROUNDS_ALONE_SLOW if slowest >= SLOW_CALL_S else MIN_ROUNDS_ALONE
    fit = int(ROUNDS_TIME_FACTOR * measure_s / per_round)
    return max(floor, min(MAX_ROUNDS_ALONE, fit))


def final_records(
    comparison: Comparison, records: Mapping[str, CandidateResult], timing: Mapping[str, str]
) -> dict[str, CandidateResult]:
    """The records of the finalists (the cases of `comparison`, each timed as `timing`
    says) with its figures: speedups against the baseline of the same comparison, and
    intervals from its rounds."""
    base_rounds = comparison.results[comparison.baseline].round_medians_s
    out: dict[str, CandidateResult] = {}
    for name in comparison.results:
        case, previous = comparison.results[name], records[name]
        if case.measurement is None:
            out[name] = dataclasses.replace(
                previous, verdict="failed", reason=f"timed alone, it failed: {case.error}"
            )
            continue
        out[name] = dataclasses.replace(
            previous,
            measurement=case.measurement,
            speedup=case.speedup,
            speedup_interval=_paired_interval(base_rounds, case.round_medians_s, case.speedup),
            timing=timing[name],
            versus=timing[comparison.baseline],
            noise=_noise(case.round_medians_s),
        )
    return out


def _interval(
    base: Measurement | None, case_seconds: Sequence[float], speedup: float | None
) -> tuple[float, float] | None:
    """The speedup's interval from calls timed in the same rounds (interleaved)."""
    return _paired_interval(base.seconds if base else (), case_seconds, speedup)


def _paired_interval(
    base_rounds: Sequence[float], case_rounds: Sequence[float], speedup: float | None
) -> tuple[float, float] | None:
    """The speedup's interval over paired rounds; None where the rounds do not pair up."""
    if speedup is None or not base_rounds or len(base_rounds) != len(case_rounds):
        return None
    if min(case_rounds) <= 0:
        return None
    return paired_ratio_interval(base_rounds, case_rounds, point=speedup)


def _noise(round_medians_s: Sequence[float]) -> float:
    """Half the p10–p90 width of the per-round medians, relative to their median."""
    if len(round_medians_s) < 2:
        return 0.0
    return Summary.from_values(round_medians_s).spread / 2


@dataclasses.dataclass(frozen=True)
class _Probe:
    """What `_repeats` measured: repeats for the screening, the seconds of one call of
    every case, and each case's one timed call (or its error)."""

    repeats: int
    round_s: float
    seconds: Mapping[str, float]
    errors: Mapping[str, str]

    def comparison(self, baseline: str, items_per_call: int) -> Comparison:
        """The timed calls as a screening of one round (each case's call after its warm-up);
        `BenchmarkError` if the baseline failed, as `compare` raises."""
        if baseline in self.errors:
            raise BenchmarkError(
                f"baseline case {baseline!r} failed, so no speedups can be computed: "
                f"{self.errors[baseline]}"
            )
        base_s = self.seconds.get(baseline)
        results: dict[str, CaseResult] = {}
        for name, seconds in self.seconds.items():
            measurement = Measurement.from_seconds(name, (seconds,), items_per_call)
            speedup = base_s / seconds if base_s and seconds > 0 else None
            results[name] = CaseResult(name, measurement, speedup=speedup)
        for name, error in self.errors.items():
            results[name] = CaseResult(name, None, error=error)
        return Comparison(baseline, results, interleaved=True, call_order=tuple(self.seconds))


def _repeats(
    cases: Mapping[str, Callable[[], object]], measure_s: float, *, warm_up: bool = True
) -> _Probe:
    """Repeats so that all timed calls take about `measure_s`, within [MIN_SCREENING_REPEATS,
    2000], and the seconds of one call of every case (after a warm-up call if `warm_up`:
    skipped where the cases just ran a batch of this shape, saving BERT-base at batch 32
    ~25 s). The screening only picks the finalists, which are timed again alone."""
    seconds: dict[str, float] = {}
    errors: dict[str, str] = {}
    for name, fn in cases.items():
        try:
            if warm_up:
                fn()
            start = time.perf_counter()
            fn()
            seconds[name] = time.perf_counter() - start
        except Exception as exc:  # a failing case is recorded as failed
            errors[name] = one_line(exc)
    round_s = sum(seconds.values())
    if round_s <= 0:
        return _Probe(MIN_SCREENING_REPEATS, round_s, seconds, errors)
    repeats = int(min(2000, max(MIN_SCREENING_REPEATS, measure_s / round_s)))
    return _Probe(repeats, round_s, seconds, errors)
