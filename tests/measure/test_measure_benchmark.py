"""The timing harness. Timing relations use a fake clock, except one real sleep check."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, cast

import pytest

from jiasu.core.errors import ConfigError, JiasuError
from jiasu.measure import benchmark
from jiasu.measure.benchmark import BenchmarkError, Measurement, compare, measure


class FakeClock:
    """A perf_counter_ns that only advances when a fake workload says so."""

    def __init__(self) -> None:
        self.now_ns = 0

    def perf_counter_ns(self) -> int:
        return self.now_ns

    def work(self, ms: float) -> Callable[[], None]:
        def fn() -> None:
            self.now_ns += int(ms * 1_000_000)

        return fn


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(benchmark, "time", SimpleNamespace(perf_counter_ns=fake.perf_counter_ns))
    return fake


class Counter:
    def __init__(self, fn: Callable[[], None] | None = None) -> None:
        self.calls = 0
        self.fn = fn

    def __call__(self) -> None:
        self.calls += 1
        if self.fn is not None:
            self.fn()


def test_warmup_not_timed_and_counts() -> None:
    fn = Counter()
    m = measure(fn, warmup=4, repeats=6)
    assert fn.calls == 10
    assert len(m.seconds) == 6 and m.summary.n == 6
    assert all(s >= 0 for s in m.seconds)


def test_sync_called_once_per_timed_repeat() -> None:
    sync = Counter()
    measure(lambda: None, warmup=0, repeats=5, sync=sync)
    assert sync.calls == 5
    sync = Counter()
    measure(lambda: None, warmup=3, repeats=5, sync=sync)
    assert sync.calls == 5 + 1  # plus one after warm-up, outside the clock


def test_sync_is_inside_the_clock(clock: FakeClock) -> None:
    m = measure(clock.work(1), warmup=0, repeats=3, sync=clock.work(2))
    assert m.seconds == pytest.approx((0.003, 0.003, 0.003))


def test_measurement_fields(clock: FakeClock) -> None:
    m = measure(clock.work(4), warmup=1, repeats=3, items_per_call=8, name="x")
    assert m.name == "x"
    assert m.median_s == pytest.approx(0.004)
    assert m.items_per_s == pytest.approx(2000.0)
    d = m.to_dict()
    json.dumps(d)
    assert d["items_per_call"] == 8 and len(d["seconds"]) == 3


def test_real_sleep_ratio() -> None:
    short = measure(lambda: time.sleep(0.002), warmup=0, repeats=3)
    long = measure(lambda: time.sleep(0.020), warmup=0, repeats=3)
    assert 5 < long.median_s / short.median_s < 15


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"warmup": -1}, "warmup"),
        ({"repeats": 0}, "repeats"),
        ({"repeats": 2.5}, "repeats"),
        ({"items_per_call": 0}, "items_per_call"),
        ({"sync": 3}, "sync"),
    ],
)
def test_measure_validates(kwargs: dict[str, Any], word: str) -> None:
    with pytest.raises(ConfigError, match=word):
        measure(lambda: None, **kwargs)


def test_measure_rejects_non_callable() -> None:
    with pytest.raises(ConfigError, match="not callable"):
        measure(cast(Any, 42))


def test_compare_speedups_exact(clock: FakeClock) -> None:
    c = compare(
        {"base": clock.work(10), "fast": clock.work(5), "slow": clock.work(20)},
        baseline="base",
        warmup=1,
        repeats=4,
        items_per_call=2,
    )
    assert list(c.results) == ["base", "fast", "slow"]
    assert c.results["base"].speedup == pytest.approx(1.0)
    assert c.results["fast"].speedup == pytest.approx(2.0)
    assert c.results["slow"].speedup == pytest.approx(0.5)
    summary = c.results["fast"].speedup_summary
    assert summary is not None and summary.n == 4 and summary.median == pytest.approx(2.0)
    fast = c.results["fast"].measurement
    assert fast is not None and fast.items_per_s == pytest.approx(400.0)


def test_compare_real_sleep_speedup() -> None:
    c = compare(
        {"slow": lambda: time.sleep(0.020), "fast": lambda: time.sleep(0.002)},
        baseline="slow",
        warmup=0,
        repeats=3,
    )
    speedup = c.results["fast"].speedup
    assert speedup is not None and 5 < speedup < 15


def test_interleaving_order_recorded() -> None:
    calls: list[str] = []
    cases = {name: (lambda name=name: calls.append(name)) for name in "abc"}
    c = compare(cases, baseline="a", warmup=1, repeats=3)
    rounds = ("a", "b", "c", "b", "c", "a", "c", "a", "b")
    assert c.interleaved and c.call_order == rounds
    assert tuple(calls) == ("a", "b", "c", *rounds)  # warm-ups first, in case order


def test_no_interleave_runs_cases_in_blocks(clock: FakeClock) -> None:
    cases = {name: clock.work(1) for name in "ab"}
    c = compare(cases, baseline="a", warmup=0, repeats=3, interleave=False)
    assert not c.interleaved
    assert c.call_order == ("a", "a", "a", "b", "b", "b")
    assert c.results["b"].speedup_summary is not None


def test_failed_case_recorded_others_go_on() -> None:
    def broken() -> None:
        raise ValueError("shape mismatch: (2, 3) vs (3, 4)\nsecond line ignored")

    ok = Counter()
    c = compare({"base": lambda: None, "broken": broken, "ok": ok}, baseline="base", repeats=4)
    r = c.results["broken"]
    assert not r.ok and r.measurement is None and r.speedup is None
    assert r.error == "ValueError: shape mismatch: (2, 3) vs (3, 4)"
    assert c.results["ok"].ok and ok.calls == 3 + 4
    assert "broken" not in c.call_order


def test_case_failing_mid_run_is_dropped() -> None:
    state = {"n": 0}

    def flaky() -> None:
        state["n"] += 1
        if state["n"] > 2:
            raise RuntimeError("out of memory")

    c = compare({"base": lambda: None, "flaky": flaky}, baseline="base", warmup=1, repeats=5)
    assert c.results["flaky"].error == "RuntimeError: out of memory"
    assert state["n"] == 3  # one warm-up, one timed success, one failure, then dropped
    base = c.results["base"].measurement
    assert base is not None and base.summary.n == 5


def test_baseline_failure_raises() -> None:
    def broken() -> None:
        raise KeyError("weights")

    with pytest.raises(BenchmarkError, match=r"baseline case 'base' failed.*KeyError") as info:
        compare({"base": broken, "other": lambda: None}, baseline="base", repeats=2)
    assert isinstance(info.value, JiasuError)


def test_compare_validates() -> None:
    with pytest.raises(ConfigError, match="'nope' is not one of the cases; use one of: a"):
        compare({"a": lambda: None}, baseline="nope")
    with pytest.raises(ConfigError, match="at least one case"):
        compare({}, baseline="a")
    with pytest.raises(ConfigError, match="repeats"):
        compare({"a": lambda: None}, baseline="a", repeats=0)
    with pytest.raises(ConfigError, match="'b' is not callable"):
        compare({"a": lambda: None, "b": cast(Any, 1)}, baseline="a")


def test_compare_sync_count() -> None:
    sync = Counter()
    compare({"a": lambda: None, "b": lambda: None}, baseline="a", warmup=2, repeats=3, sync=sync)
    assert sync.calls == 2 * (3 + 1)


def test_to_dict_and_table_rows(clock: FakeClock) -> None:
    def broken() -> None:
        raise RuntimeError("nope")

    c = compare(
        {"base": clock.work(2), "fast": clock.work(1), "broken": broken},
        baseline="base",
        repeats=3,
        items_per_call=10,
    )
    d = json.loads(json.dumps(c.to_dict()))
    assert d["baseline"] == "base" and set(d["results"]) == {"base", "fast", "broken"}
    assert d["results"]["broken"]["error"] == "RuntimeError: nope"
    rows = c.table_rows()
    assert [r[0] for r in rows] == ["base", "fast", "broken"]
    assert all(len(r) == len(benchmark.TABLE_COLUMNS) for r in rows)
    assert rows[0][1] == "2.00 ms" and rows[0][4] == "1.00× (baseline)"
    assert rows[1][4] == "2.00× (p10 2.00, p90 2.00)"
    assert rows[1][3] == "10.00k"
    assert rows[2][4] == "failed: RuntimeError: nope"


def test_measurement_is_frozen() -> None:
    m = Measurement.from_seconds("x", (0.1, 0.2))
    with pytest.raises(AttributeError):
        setattr(m, "name", "y")  # noqa: B010 - the point is a runtime assignment
