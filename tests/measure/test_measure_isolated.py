"""`compare_isolated`: every case alone in its own process, timed in alternating blocks."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from jiasu.core.errors import ConfigError
from jiasu.measure import BenchmarkError, isolated
from jiasu.measure.isolated import ONE_CALL_BEHIND, SLOW_CALL_S, Isolated, compare_isolated

WORKERS = (str(Path(__file__).parent / "workers"),)


def case(factory: str, **kwargs: object) -> Isolated:
    return Isolated(f"cases:{factory}", kwargs, WORKERS)


def test_cases_run_in_their_own_processes_and_the_ratio_matches_the_work() -> None:
    pid = os.getpid()
    comparison = compare_isolated(
        {
            "slow": case("sleeper", ms=4.0, parent_pid=pid),
            "fast": case("sleeper", ms=1.0, parent_pid=pid),
            "here": lambda: time.sleep(0.002),  # a plain callable runs in this process
        },
        baseline="slow",
        seconds=1.5,
        rounds=3,
    )
    results = comparison.results
    assert all(r.ok for r in results.values()), {n: r.error for n, r in results.items()}
    # sleep(4 ms) against sleep(1 ms) and sleep(2 ms): the overhead of a call is ~0.1 ms.
    assert 2.5 < results["fast"].speedup < 4.2
    assert 1.5 < results["here"].speedup < 2.1
    assert results["slow"].speedup == 1.0
    fast = results["fast"]
    assert fast.speedup_summary is not None and fast.speedup_summary.n == 3  # one per round
    assert fast.measurement is not None and fast.measurement.summary.n >= 3 * 3
    # Blocks alternate: each round times every case once, the order rotated.
    assert comparison.call_order[:3] == ("slow", "fast", "here")
    assert comparison.call_order[3:6] == ("fast", "here", "slow")


def test_a_slow_call_is_warmed_once_and_timed_twice_per_block() -> None:
    # A call of SLOW_CALL_S or more: one warm-up and one timed call to probe it, then per
    # round two timed calls (not 5 warm-up calls and blocks of a re-warming call and 3).
    pid = os.getpid()
    comparison = compare_isolated(
        {"slow": case("sleeper", ms=1e3 * SLOW_CALL_S, parent_pid=pid),
         "fast": case("sleeper", ms=1.0, parent_pid=pid)},
        baseline="slow", seconds=0.05, rounds=2,
    )  # fmt: skip
    slow, fast = comparison.results["slow"].measurement, comparison.results["fast"].measurement
    assert slow is not None and slow.summary.n == 2 * 2
    assert fast is not None and fast.summary.n >= 2 * 3


def test_lean_times_a_slow_case_far_behind_the_fastest_one_call_a_block() -> None:
    # A search's eager baseline at 5 s a call against int8 at 1 s: its figure only scales
    # the ratios, so one call a block; a slow case close to the fastest keeps two.
    pid = os.getpid()
    s = 1e3 * SLOW_CALL_S
    cases = {
        "far": case("sleeper", ms=ONE_CALL_BEHIND * 1.3 * s, parent_pid=pid),
        "near": case("sleeper", ms=1.1 * s, parent_pid=pid),
        "fastest": case("sleeper", ms=s, parent_pid=pid),
    }
    lean = compare_isolated(cases, baseline="far", seconds=0.05, rounds=2, lean=True)
    counts = {n: r.measurement.summary.n for n, r in lean.results.items() if r.measurement}
    assert counts == {"far": 2 * 1, "near": 2 * 2, "fastest": 2 * 2}
    assert lean.results["fastest"].speedup_summary is not None  # still paired by round
    assert lean.results["fastest"].speedup == pytest.approx(ONE_CALL_BEHIND * 1.3, rel=0.1)


def test_lean_times_a_call_of_seconds_once_a_block_and_probes_it_cold(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # ViT-B/16 at batch 32 here: 7-10 s a call for every finalist. Its cold first call is
    # the probe, and each round times one call. (The mark lowered so the test takes 3 s.)
    monkeypatch.setattr(isolated, "ONE_CALL_S", 1.5 * SLOW_CALL_S)
    s = 1e3 * SLOW_CALL_S
    logs = {name: tmp_path / f"{name}.log" for name in ("long", "longer")}
    cases = {
        "long": case("counting_sleeper", ms=1.6 * s, log=str(logs["long"])),
        "longer": case("counting_sleeper", ms=1.8 * s, log=str(logs["longer"])),
    }
    lean = compare_isolated(cases, baseline="long", seconds=0.05, rounds=2, lean=True)
    counts = {n: r.measurement.summary.n for n, r in lean.results.items() if r.measurement}
    assert counts == {"long": 2, "longer": 2}
    calls = {name: len(log.read_text().splitlines()) for name, log in logs.items()}
    assert calls == {"long": 1 + 2, "longer": 1 + 2}  # a cold probe, then one a round


def test_output_printed_by_a_runtime_does_not_corrupt_the_timing() -> None:
    comparison = compare_isolated(
        {"quiet": case("sleeper", ms=1.0, parent_pid=os.getpid()), "noisy": case("noisy", ms=1.0)},
        baseline="quiet",
        seconds=0.3,
        rounds=2,
    )
    assert comparison.results["noisy"].ok, comparison.results["noisy"].error


def test_failures_are_recorded_with_their_reason_and_the_others_go_on() -> None:
    comparison = compare_isolated(
        {
            "base": case("sleeper", ms=0.5, parent_pid=os.getpid()),
            "no build": case("broken"),
            "crash": case("crashes_on_call"),
            "raises": case("fails_on_call"),
            "no module": Isolated("not_a_module_anywhere:make"),
        },
        baseline="base",
        seconds=0.3,
        rounds=2,
    )
    r = comparison.results
    assert r["base"].ok
    assert r["no build"].error == "ValueError: model file missing; pass --model"
    assert r["crash"].error is not None and "exit status 3" in r["crash"].error
    assert r["raises"].error == "RuntimeError: input shape mismatch"
    assert r["no module"].error is not None and "not_a_module_anywhere" in r["no module"].error


def test_a_failing_baseline_stops_the_comparison() -> None:
    with pytest.raises(BenchmarkError, match=r"baseline case 'base' failed.*model file missing"):
        compare_isolated(
            {"base": case("broken"), "other": lambda: None}, baseline="base", seconds=0.1
        )


def test_bad_arguments_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="baseline 'x' is not one of the cases"):
        compare_isolated({"a": lambda: None}, baseline="x")
    with pytest.raises(ConfigError, match="rounds 0 is invalid"):
        compare_isolated({"a": lambda: None}, baseline="a", rounds=0)
    with pytest.raises(ConfigError, match="neither callable nor Isolated"):
        compare_isolated({"a": 3}, baseline="a")  # type: ignore[dict-item]


def test_a_worker_that_never_answers_is_stopped_and_recorded() -> None:
    start = time.perf_counter()
    comparison = compare_isolated(
        {"base": lambda: None, "hangs": case("hangs_on_build")},
        baseline="base",
        seconds=0.1,
        start_timeout_s=3,
    )
    assert comparison.results["hangs"].error == "the timing worker gave no answer within 3 s"
    assert time.perf_counter() - start < 30  # killed, not waited for
