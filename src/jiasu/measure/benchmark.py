"""The timing harness: `measure` one callable, `compare` several against a baseline.

Each timed call is wrapped in `time.perf_counter_ns`; for asynchronous devices pass a
`sync` callable (see `jiasu.hardware.sync_fn`) that is called before each clock stops.

>>> m = measure(lambda: sum(range(100)), warmup=1, repeats=5, items_per_call=100)
>>> m.summary.n, m.items_per_s > 0
(5, True)
>>> c = compare({"a": lambda: None, "b": lambda: None}, baseline="a", repeats=3)
>>> sorted(c.results), c.results["a"].speedup
(['a', 'b'], 1.0)
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jiasu.core.errors import ConfigError, JiasuError, one_line
from jiasu.measure.stats import Summary, ratio_summary

_ERROR_CHARS = 200


class BenchmarkError(JiasuError):
    """A benchmark could not produce a result (for example, its baseline case failed)."""


@dataclass(frozen=True)
class Measurement:
    """The timings of `repeats` calls of one callable, in seconds."""

    name: str
    seconds: tuple[float, ...]
    items_per_call: int
    summary: Summary

    @classmethod
    def from_seconds(
        cls, name: str, seconds: tuple[float, ...], items_per_call: int = 1
    ) -> Measurement:
        """Build a measurement from raw per-call timings."""
        return cls(name, tuple(seconds), items_per_call, Summary.from_values(seconds))

    @property
    def median_s(self) -> float:
        """Median seconds per call."""
        return self.summary.median

    @property
    def items_per_s(self) -> float:
        """Throughput at the median: items_per_call / median seconds (inf if median is 0)."""
        if self.median_s <= 0:
            return float("inf")
        return self.items_per_call / self.median_s

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form for JSON reports."""
        return {
            "name": self.name,
            "seconds": list(self.seconds),
            "items_per_call": self.items_per_call,
            "median_s": self.median_s,
            "items_per_s": self.items_per_s,
            "summary": self.summary.to_dict(),
        }


@dataclass(frozen=True)
class CaseResult:
    """One case of a comparison: its measurement, or the error that stopped it."""

    name: str
    measurement: Measurement | None
    error: str | None = None
    speedup: float | None = None
    speedup_summary: Summary | None = None
    # The median of each round (seconds), where a round holds many calls (isolated blocks).
    round_medians_s: tuple[float, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the case ran to completion."""
        return self.measurement is not None

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form for JSON reports."""
        return {
            "name": self.name,
            "ok": self.ok,
            "error": self.error,
            "speedup": self.speedup,
            "speedup_summary": self.speedup_summary.to_dict() if self.speedup_summary else None,
            "measurement": self.measurement.to_dict() if self.measurement else None,
        }


TABLE_COLUMNS = ("case", "median", "p10–p90", "items/s", "speedup ×")


@dataclass(frozen=True)
class Comparison:
    """Results of `compare`: one `CaseResult` per case, in the order the cases were given.

    `call_order` lists the case name of every timed call in the order they ran, so
    the interleaving (or its absence) can be checked afterwards.
    """

    baseline: str
    results: dict[str, CaseResult]
    interleaved: bool
    call_order: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form for JSON reports."""
        return {
            "baseline": self.baseline,
            "interleaved": self.interleaved,
            "call_order": list(self.call_order),
            "results": {name: r.to_dict() for name, r in self.results.items()},
        }

    def table_rows(self) -> list[tuple[str, str, str, str, str]]:
        """One row of strings per case, matching `TABLE_COLUMNS`."""
        rows = []
        for name, r in self.results.items():
            m = r.measurement
            if m is None:
                rows.append((name, "—", "—", "—", f"failed: {r.error}"))
                continue
            s = m.summary
            rows.append(
                (
                    name,
                    format_seconds(s.median),
                    f"{format_seconds(s.p10)} – {format_seconds(s.p90)}",
                    format_rate(m.items_per_s),
                    _format_speedup(r, is_baseline=name == self.baseline),
                )
            )
        return rows


def format_seconds(seconds: float) -> str:
    """A duration with a readable unit.

    >>> format_seconds(0.00123), format_seconds(2.5), format_seconds(4.2e-6)
    ('1.23 ms', '2.50 s', '4.20 µs')
    """
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    if seconds >= 1e-6:
        return f"{seconds * 1e6:.2f} µs"
    return f"{seconds * 1e9:.0f} ns"


def format_rate(per_s: float) -> str:
    """A rate with an SI prefix.

    >>> format_rate(1234.0), format_rate(12.5), format_rate(3.2e6)
    ('1.23k', '12.5', '3.20M')
    """
    if per_s == float("inf"):
        return "∞"
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if per_s >= factor:
            return f"{per_s / factor:.2f}{suffix}"
    return f"{per_s:.3g}"


def _format_speedup(r: CaseResult, *, is_baseline: bool) -> str:
    if is_baseline:
        return "1.00× (baseline)"
    if r.speedup is None:
        return "—"
    text = f"{r.speedup:.2f}×"
    if r.speedup_summary is not None:
        s = r.speedup_summary
        text += f" (p10 {s.p10:.2f}, p90 {s.p90:.2f})"
    return text


def _check_count(name: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} {value!r} is invalid; use a whole number of at least {minimum}")


def _check_args(warmup: int, repeats: int, items_per_call: int, sync: object) -> None:
    _check_count("warmup", warmup, 0)
    _check_count("repeats", repeats, 1)
    _check_count("items_per_call", items_per_call, 1)
    if sync is not None and not callable(sync):
        raise ConfigError(f"sync {sync!r} is not callable; pass a zero-argument function or None")


def _time_call(fn: Callable[[], object], sync: Callable[[], None] | None) -> float:
    start = time.perf_counter_ns()
    fn()
    if sync is not None:
        sync()
    return (time.perf_counter_ns() - start) / 1e9


def _warm_up(fn: Callable[[], object], warmup: int, sync: Callable[[], None] | None) -> None:
    for _ in range(warmup):
        fn()
    if warmup and sync is not None:
        sync()  # drain queued warm-up work so it is not billed to the first timed call


def measure(
    fn: Callable[[], object],
    *,
    warmup: int = 3,
    repeats: int = 10,
    items_per_call: int = 1,
    sync: Callable[[], None] | None = None,
    name: str = "",
) -> Measurement:
    """Call `fn` `warmup` times untimed, then `repeats` times timed, and summarise.

    `sync` (if given) is called inside each timed call, before the clock stops, and once
    after the warm-up calls (so it is called `repeats + 1` times when `warmup > 0`).
    `items_per_call` (e.g. the batch size) turns the median time into `items_per_s`.
    Exceptions from `fn` propagate.
    """
    if not callable(fn):
        raise ConfigError(f"fn {fn!r} is not callable; pass a zero-argument function")
    _check_args(warmup, repeats, items_per_call, sync)
    _warm_up(fn, warmup, sync)
    seconds = tuple(_time_call(fn, sync) for _ in range(repeats))
    return Measurement.from_seconds(name, seconds, items_per_call)


def compare(
    cases: Mapping[str, Callable[[], object]],
    *,
    baseline: str,
    warmup: int = 3,
    repeats: int = 10,
    items_per_call: int = 1,
    sync: Callable[[], None] | None = None,
    interleave: bool = True,
    progress: Callable[[str], None] | None = None,
) -> Comparison:
    """Measure every case and its speedup over `baseline` (baseline median / case median).

    With `interleave=True` the timed calls run in `repeats` rounds; each round times
    every case once, the order rotated by one per round, so drift (thermal throttling,
    background load) hits all cases alike, and the per-round ratios baseline/case give
    `speedup_summary`. With `interleave=False` each case runs all its repeats in turn and
    the ratios pair the i-th call of each.

    `progress` (e.g. a `TaskProgress` advance) is called with the case name after each
    timed call: `repeats × len(cases)` times, fewer when a case fails.

    A case that raises is recorded with its one-line error and dropped; the others go
    on. If the baseline raises, `BenchmarkError` is raised at once.
    """
    names = list(cases)
    if not names:
        raise ConfigError("compare needs at least one case; got an empty mapping")
    if baseline not in cases:
        raise ConfigError(
            f"baseline {baseline!r} is not one of the cases; use one of: {', '.join(names)}"
        )
    for name, fn in cases.items():
        if not callable(fn):
            raise ConfigError(f"case {name!r} is not callable; pass a zero-argument function")
    _check_args(warmup, repeats, items_per_call, sync)

    errors: dict[str, str] = {}
    timings: dict[str, list[float]] = {name: [] for name in names}
    call_order: list[str] = []

    def run(name: str, action: Callable[[], None]) -> None:
        try:
            action()
        except Exception as exc:  # a failing case must not stop the others
            if name == baseline:
                raise BenchmarkError(
                    f"baseline case {name!r} failed, so no speedups can be computed: "
                    f"{one_line(exc, _ERROR_CHARS)}"
                ) from exc
            errors[name] = one_line(exc, _ERROR_CHARS)

    def timed(name: str) -> Callable[[], None]:
        def action() -> None:
            call_order.append(name)
            timings[name].append(_time_call(cases[name], sync))
            if progress is not None:
                progress(name)

        return action

    for name in names:
        run(name, functools.partial(_warm_up, cases[name], warmup, sync))

    if interleave:
        for round_index in range(repeats):
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                if name not in errors:
                    run(name, timed(name))
    else:
        for name in names:
            for _ in range(repeats):
                if name in errors:
                    break
                run(name, timed(name))

    base = Measurement.from_seconds(baseline, tuple(timings[baseline]), items_per_call)
    results: dict[str, CaseResult] = {}
    for name in names:
        if name in errors:
            results[name] = CaseResult(name, None, error=errors[name])
            continue
        m = Measurement.from_seconds(name, tuple(timings[name]), items_per_call)
        results[name] = CaseResult(
            name,
            m,
            speedup=_speedup(base.median_s, m.median_s, is_baseline=name == baseline),
            speedup_summary=_paired(base.seconds, m.seconds),
        )
    return Comparison(baseline, results, interleave, tuple(call_order))


def _speedup(base_s: float, case_s: float, *, is_baseline: bool) -> float:
    if is_baseline:
        return 1.0
    return base_s / case_s if case_s > 0 else float("inf")


def _paired(base: tuple[float, ...], case: tuple[float, ...]) -> Summary | None:
    if len(base) != len(case) or any(c <= 0 for c in case):
        return None
    return ratio_summary(base, case)
