"""Each command's result maps onto the one report structure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from jiasu.report import (
    ReportError,
    build_report,
    from_comparison,
    from_demo,
    from_optimize,
    from_result,
    from_train,
    load_runs,
)
from jiasu.report.model import Report


def test_demo_has_both_sides_speedup_and_curves(demo_result: dict[str, Any]) -> None:
    run = from_demo(demo_result, flops_per_sample=4.0e5)
    base, fast = run.entries
    assert (base.name, fast.name, run.baseline, run.chosen) == (
        "baseline",
        "accelerated",
        "baseline",
        "accelerated",
    )
    assert fast.speedup == pytest.approx(demo_result["speedup"])
    assert base.speedup == 1.0
    delta = demo_result["accelerated"]["test_accuracy"] - demo_result["baseline"]["test_accuracy"]
    assert fast.accuracy_delta_points == pytest.approx(delta * 100)
    assert fast.label == "threads, device_data, fused_optimizer"
    record = demo_result["baseline"]["history"][0]
    (point,) = base.curve
    assert point.wall_s == pytest.approx(record["train_seconds"] + record["val_seconds"])
    assert point.accuracy == record["val_accuracy"]
    assert fast.achieved_flops_per_s == pytest.approx(4.0e5 * fast.samples_per_s)
    assert run.accuracy_budget_points == 0.5
    assert run.environment["cpu_model"]


def test_demo_epochs_are_the_repeats_for_the_error_bars() -> None:
    def side(seconds: list[float]) -> dict[str, Any]:
        history = [
            {"epoch": i + 1, "train_seconds": s, "val_seconds": 0.0, "val_accuracy": 0.9}
            for i, s in enumerate(seconds)
        ]
        return {"train_seconds": sum(seconds), "test_accuracy": 0.9, "history": history}

    run = from_demo({"kind": "demo", "baseline": side([4, 4, 4]), "accelerated": side([2, 1, 4])})
    fast = run.entries[1]
    interval = fast.speedup_interval
    assert interval is not None and fast.speedup == pytest.approx(12 / 7)
    # a bootstrap over the paired epochs of total / total: it holds the speedup printed
    # beside it, and lies within what any resample of the epochs can give (12/12 .. 12/3)
    assert 1.0 <= interval.low < 12 / 7 < interval.high <= 4.0


def test_optimize_maps_candidates_budget_and_rejections(optimize_result: dict[str, Any]) -> None:
    run = from_optimize(optimize_result)
    names = [e.name for e in run.entries]
    assert names[0] == "eager" and run.baseline == "eager" and run.chosen == "onnxruntime-int8"
    assert len(names) == len(set(names)) == 6
    int8 = run.entry("onnxruntime-int8")
    assert int8 is not None and int8.speedup == pytest.approx(4.0 / 1.3)
    assert int8.accuracy_delta_points == pytest.approx(-0.18)
    assert int8.accuracy_delta_interval is not None
    assert int8.accuracy_delta_interval.low == pytest.approx(-0.38)
    assert int8.precision == "int8" and int8.peak_fraction(None) is None
    assert run.accuracy_budget_points == pytest.approx(0.5)
    skipped = {s.name: s for s in run.skipped}
    assert skipped["dynamic-int8-aggressive"].status == "rejected"
    assert "budget" in skipped["dynamic-int8-aggressive"].reason
    assert "jiasu[openvino]" in skipped["openvino"].reason
    assert len(run.entry("compile").latency_ms) == 40  # type: ignore[union-attr]


def test_optimize_relative_budget_and_real_kind(optimize_result: dict[str, Any]) -> None:
    data = dict(optimize_result, kind="jiasu-optimize-report")
    data.pop("accuracy_budget")
    data["budget"] = {"kind": "relative", "value": 0.01}
    (run,) = from_result(data)
    assert run.kind == "optimize"
    assert run.accuracy_budget_points == pytest.approx(0.979)  # 1% of 97.9%


def test_train_keeps_dropped_techniques_with_reasons(train_result: dict[str, Any]) -> None:
    run = from_train(train_result)
    base, fast = run.entries
    assert base.verdict == "baseline"
    assert fast.speedup == pytest.approx(2.5)
    assert fast.time_to_target_s == 13.5
    assert fast.label == "device_data"
    assert [(s.name, s.status) for s in run.skipped] == [("bf16_autocast", "dropped")]
    assert len(fast.curve) == 4 and fast.curve[-1].accuracy == 0.974


def test_train_without_baseline_is_a_single_entry() -> None:
    run = from_train({"recipe": "fast", "train_seconds": 10.0, "test_accuracy": 0.97})
    assert [e.name for e in run.entries] == ["fast"] and run.baseline == "fast"


def test_comparison_keeps_distributions_and_failures(comparison_result: dict[str, Any]) -> None:
    run = from_comparison(comparison_result, title="matmul")
    assert [e.name for e in run.entries] == ["fp32", "bf16"]
    fp32, bf16 = run.entries
    seconds = comparison_result["comparison"]["results"]["bf16"]["measurement"]["seconds"]
    assert sorted(bf16.latency_ms) == pytest.approx(sorted(s * 1e3 for s in seconds))
    assert bf16.speedup_interval is not None and fp32.speedup == 1.0
    assert bf16.speedup_interval.low <= bf16.speedup_interval.high
    (failed,) = run.skipped
    assert failed.status == "failed" and "backend crashed" in failed.reason


def test_report_json_round_trips(
    demo_result: dict[str, Any], optimize_result: dict[str, Any], peak: Any
) -> None:
    report = build_report([demo_result, optimize_result], peak=peak)
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["schema_version"] == 2 and data["kind"] == "jiasu.report"
    again = Report.from_dict(data)
    assert again == report
    # a report's JSON is itself an input: its runs come back unchanged
    assert from_result(data) == list(report.runs)


def test_unknown_dict_and_bad_files_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="not a jiasu result"):
        from_result({"hello": 1})
    with pytest.raises(ReportError, match="does not exist"):
        load_runs([tmp_path / "missing.json"])
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ReportError, match="not valid JSON"):
        load_runs([bad])
    bad.write_text("[1, 2]")
    with pytest.raises(ReportError, match="no JSON object"):
        load_runs([bad])
