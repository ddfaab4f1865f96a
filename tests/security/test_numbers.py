"""Numbers that can be trusted (issue 11, section 6): every printed ratio is the ratio of the
two figures printed beside it, a slower candidate says "slower", and intervals hold their
point estimate. Built from known timings: nothing here is timed."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from jiasu.cli.main import main
from jiasu.core.signature import InputSignature
from jiasu.core.technique import Exactness
from jiasu.infer.backends.base import Candidate
from jiasu.infer.report import CandidateResult, OptimizeResult, summary_line
from jiasu.infer.verify import AccuracyBudget
from jiasu.measure.benchmark import CaseResult, Comparison, Measurement
from jiasu.measure.isolated import _comparison as isolated_comparison

DEMO_RESULT = Path(__file__).parents[1] / "report" / "data" / "demo_mnist_quick.json"
BASE = "torch-eager"
SCREENED_MS = {BASE: 2.0, "ort-int8": 10.0, "ort-fp32": 1.5}  # the screening, interleaved
ALONE_MS = {BASE: 1.0, "ort-opt": 0.5, "compiled": 0.8}  # the finalists, each alone
TIMING = {BASE: "isolated", "ort-opt": "isolated", "compiled": "blocks"}


def _calls(ms: float, n: int, salt: int) -> tuple[float, ...]:
    """n per-call seconds around `ms`, ±3 % in a fixed pattern (no clock involved)."""
    return tuple(ms / 1e3 * (1 + 0.03 * (((i * 7 + salt) % 11) - 5) / 5) for i in range(n))


def _screening() -> Comparison:
    """An interleaved screening as `compare` returns it: 41 rounds, one call of each."""
    seconds = {name: _calls(ms, 41, i) for i, (name, ms) in enumerate(SCREENED_MS.items())}
    base = Measurement.from_seconds(BASE, seconds[BASE])
    results = {}
    for name, s in seconds.items():
        m = Measurement.from_seconds(name, s)
        results[name] = CaseResult(name, m, speedup=base.median_s / m.median_s)
    return Comparison(BASE, results, True)


def _alone() -> Comparison:
    """The finalists' timing as `compare_isolated` makes it: 6 rounds of 9-call blocks."""
    blocks = {
        name: [list(_calls(ms, 9, i + r)) for r in range(6)]
        for i, (name, ms) in enumerate(ALONE_MS.items())
    }
    return isolated_comparison(BASE, list(ALONE_MS), blocks, {}, 1, ())


def _result() -> OptimizeResult:
    """An optimize result from those two timings, assembled as `optimize` assembles it."""
    from jiasu.infer.optimize import final_records, screened_records

    def record(name: str, backend: str) -> CandidateResult:
        reason = "baseline: the reference" if name == BASE else "within tolerance"
        return CandidateResult(Candidate(name, backend, {}, Exactness.NUMERIC), "accepted", reason)

    names = {**SCREENED_MS, **ALONE_MS}
    built = {n: record(n, "torch" if n in (BASE, "compiled") else "onnxruntime") for n in names}
    screened = screened_records(_screening(), {n: built[n] for n in SCREENED_MS}, "screening")
    final = final_records(_alone(), {**built, **screened}, TIMING)
    records = {**built, **screened, **final}
    return OptimizeResult(
        model="cnn", signature=InputSignature.from_shape((1, 28, 28)), target="latency",
        batch_size=1, threads=1,
        budget=AccuracyBudget(), validation_samples=100,
        candidates=tuple(records[n] for n in names), baseline_name=BASE,
        chosen_name="ort-opt", environment={},
        screening_baseline=screened[BASE].measurement,
    )  # fmt: skip


_UNIT = {"s": 1.0, "ms": 1e-3, "µs": 1e-6, "ns": 1e-9}


def _seconds(text: str) -> float:
    value, unit = text.split()
    return float(value) * _UNIT[unit]


def _ratio(text: str) -> float:
    """The time ratio baseline / this that a printed "N× faster" or "N× slower" states."""
    found = re.fullmatch(r"([\d.]+)× (faster|slower)(?: \(.*\))?", text.strip())
    assert found, f"not a speedup in words: {text!r}"
    value = float(found.group(1))
    return value if found.group(2) == "faster" else 1 / value


def test_optimize_table_divides_each_time_by_the_baseline_printed_beside_it() -> None:
    from jiasu.infer.report import timing_note

    result = _result()
    rows = result.table_rows()
    columns = ["name", "p50", "p99", "rate", "vs", "timed", "delta", "verdict"]
    table = [dict(zip(columns, row, strict=True)) for row in rows]
    baselines = {r["timed"]: _seconds(r["p50"]) for r in table if r["vs"] == "baseline"}
    assert baselines == {"alone": pytest.approx(1e-3, rel=0.01), "screened": pytest.approx(2e-3)}
    checked = 0
    for row in table:
        if row["vs"] == "baseline":
            continue
        against = baselines["alone" if row["timed"] in ("alone", "blocks") else row["timed"]]
        # the ratio printed is the baseline time printed beside it over this row's time
        assert _ratio(row["vs"]) == pytest.approx(against / _seconds(row["p50"]), rel=0.01)
        checked += 1
    assert checked == 4
    slow = next(r for r in table if r["name"].strip() == "ort-int8")
    assert slow["vs"] == "5.00× slower"  # 10 ms screened against the 2 ms screened baseline
    note = timing_note(result)
    assert "1.00 ms (alone)" in note and "2.00 ms (screened)" in note
    assert "2.00× faster than torch-eager timed alone" in summary_line(result)


def _check_json_ratios(report: dict[str, Any]) -> int:
    figures = {"isolated": report["baseline"], "screening": report["baseline_screening"]}
    checked = 0
    for c in report["candidates"]:
        versus = c["speedup_versus"]
        assert versus["latency_ms_p50"] == figures[versus["timing"]]["latency_ms_p50"]
        assert c["speedup"] == pytest.approx(versus["latency_ms_p50"] / c["latency_ms_p50"])
        low, high = c["speedup_interval"]
        assert low <= c["speedup"] <= high and high / low < 1.2  # the calls vary by ±3 %
        checked += 1
    return checked


def test_optimize_json_and_report_ratios_match_their_baselines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _result().to_dict()
    assert _check_json_ratios(data) == 5  # the baseline and four candidates
    path, out = tmp_path / "report.json", tmp_path / "combined.json"
    path.write_text(json.dumps(data))
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.setenv("JIASU_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["report", str(path), "--json", str(out)]) == 0
    printed = capsys.readouterr().out

    entries = {e["name"]: e for e in json.loads(out.read_text())["runs"][0]["entries"]}
    assert entries[BASE + " (screened)"]["latency_ms_p50"] == pytest.approx(2.0, rel=0.01)
    for entry in entries.values():
        base = entries[entry["versus"] or BASE]
        assert entry["speedup"] == pytest.approx(base["latency_ms_p50"] / entry["latency_ms_p50"])
        if entry["speedup_interval"]:
            low, high = entry["speedup_interval"]
            assert low <= entry["speedup"] <= high

    # the terminal table: every ratio against the p50 of the row named under "against"
    lines = [ln for ln in printed.splitlines() if ln.startswith(("┃", "│"))]
    header = [cell.strip() for cell in lines[0].strip("┃").split("┃")]
    rows = [dict(zip(header, (c.strip() for c in ln.strip("│").split("│")), strict=True))
            for ln in lines[1:]]  # fmt: skip
    p50 = {r["entry"].rstrip(" ★"): float(r["latency ms p50 / p99"].split(" / ")[0]) for r in rows}
    for row in rows:
        if row["speedup"] != "baseline":
            expected = p50[row["against"]] / p50[row["entry"].rstrip(" ★")]
            assert _ratio(row["speedup"]) == pytest.approx(expected, rel=0.01)
    assert "5.00× slower" in printed and "2.00× faster" in printed


def test_report_never_divides_a_screened_time_by_the_isolated_baseline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A report.json as optimize wrote it before: the baseline row timed alone (1.00 ms),
    a screened candidate 10× slower than it whose speedup divided the screening's baseline
    (199 ms, printed nowhere), with a per-call p10–p90 as its "interval"."""

    def candidate(name: str, p50: float, timing: str, **extra: Any) -> dict[str, Any]:
        return {"name": name, "backend": "onnxruntime", "settings": {}, "latency_ms_p50": p50,
                "latency_ms_p99": p50 * 1.2, "samples_per_s": 1e3 / p50, "timing": timing,
                "verdict": "accepted", "reason": "", **extra}  # fmt: skip

    base = candidate(BASE, 1.0, "isolated", speedup=1.0)
    slow = candidate("ort-int8", 10.0, "screening", speedup=19.92, speedup_interval=[2.99, 1036])
    fast = candidate("ort-opt", 0.5, "isolated", speedup=2.0, speedup_interval=[1.9, 2.1])
    data = {"schema_version": 1, "kind": "jiasu-optimize-report", "baseline": base,
            "chosen": fast, "candidates": [base, slow, fast]}  # fmt: skip
    path, out = tmp_path / "old-report.json", tmp_path / "combined.json"
    path.write_text(json.dumps(data))
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.setenv("JIASU_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["report", str(path), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "19.92" not in printed and "1036" not in printed
    entries = {e["name"]: e for e in json.loads(out.read_text())["runs"][0]["entries"]}
    # no baseline timed like it is in the file: no ratio, rather than a wrong one
    assert entries["ort-int8"]["speedup"] is None
    assert entries["ort-opt"]["speedup"] == pytest.approx(2.0)
    assert "2.00× faster" in printed


# --- the peak behind every "share of peak" ------------------------------------------------
def _ago(**delta: float) -> str:
    from datetime import datetime, timedelta, timezone

    return (datetime.now(timezone.utc) - timedelta(**delta)).isoformat(timespec="seconds")


def test_peak_is_the_best_round_and_says_how_old_and_noisy_it_is() -> None:
    from datetime import datetime, timedelta, timezone

    from jiasu.hardware.peak import describe_peak, peak_from_rounds, peak_warnings, reduce_rates

    # one round ran while something else loaded the machine: it does not set the peak
    loaded = reduce_rates([81e9, 290e9, 300e9, 296e9])
    assert loaded.best == 300e9 and loaded.rounds == 4
    assert loaded.spread == pytest.approx((300 - 81) / (300 + 81))
    quiet = reduce_rates([300e9, 294e9, 297e9])
    assert quiet.spread == pytest.approx(6 / 594)

    now = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
    two_hours = now - timedelta(hours=2)
    peak = peak_from_rounds([300e9, 294e9, 297e9], None, [2e10, 2.1e10], matmul_size=512,
                            load_average=0.2, measured_at=two_hours)  # fmt: skip
    assert peak.matmul_fp32_flops_per_s == 300e9 and peak.rounds == 3
    assert describe_peak(peak, "fp32", now) == "the 300 GFLOP/s fp32 peak measured 2 h ago, ±1%"
    assert peak_warnings(peak, now) == []
    # the same peak, later: stale
    (stale,) = peak_warnings(peak, now + timedelta(days=45))
    assert "measured 45 days ago" in stale and "doctor --measure" in stale
    # rounds far apart: noisy, whatever its age
    noisy = peak_from_rounds([81e9, 300e9], None, [2e10], matmul_size=512, measured_at=two_hours)
    assert "±57%" in describe_peak(noisy, "fp32", now)
    assert any("varied by ±57%" in w for w in peak_warnings(noisy, now))
    # measured while the machine was busy: flagged even if the rounds agree
    busy = peak_from_rounds([81e9, 82e9], None, [2e10], matmul_size=512,
                            load_average=9.0, measured_at=two_hours)  # fmt: skip
    assert any("busy" in w and "load 9.0" in w for w in peak_warnings(busy, now))


def test_report_shows_the_peak_age_and_noise_beside_the_share(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv("JIASU_CACHE_DIR", str(cache))
    monkeypatch.setenv("COLUMNS", "250")
    peak = {"matmul_fp32_flops_per_s": 3e11, "matmul_bf16_flops_per_s": None,
            "memory_bytes_per_s": 3e10, "threads": 2, "measured_at": _ago(hours=2),
            "rounds": 5, "fp32_spread": 0.04}  # fmt: skip
    (cache / "peak.json").write_text(json.dumps(peak))
    result, out = tmp_path / "optimize.json", tmp_path / "report.json"
    result.write_text(json.dumps({**_result().to_dict(), "flops_per_sample": 4.1e5}))
    assert main(["report", str(result), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    # the share column says which peak it divides, how old and how noisy it is
    assert "achieved / peak (measured 2 h ago, ±4%)" in printed
    assert re.search(r"820 MFLOP/s = 0\.27%", printed)  # 4.1e5 × 2,000/s of 300 GFLOP/s
    assert "the 300 GFLOP/s fp32 peak measured 2 h ago, ±4%" in printed
    assert "warning" not in printed
    quality = json.loads(out.read_text())["peak_quality"]
    assert quality["age_s"] == pytest.approx(7200, abs=120) and quality["warnings"] == []


def test_report_warns_of_an_old_peak_of_unknown_noise(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A peak cached 40 days ago without its noise, as `doctor --measure` wrote it before."""
    monkeypatch.setenv("JIASU_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "250")
    peak = {"matmul_fp32_flops_per_s": 8.1e10, "matmul_bf16_flops_per_s": None,
            "memory_bytes_per_s": 3e10, "threads": 2, "measured_at": _ago(days=40)}  # fmt: skip
    (tmp_path / "peak.json").write_text(json.dumps(peak))
    assert main(["report", str(DEMO_RESULT)]) == 0
    printed = capsys.readouterr().out
    assert "the 81 GFLOP/s fp32 peak measured 40 days ago, noise unknown" in printed
    assert "warning: the peak was measured 40 days ago" in printed
    assert "noise was not recorded" in printed


# --- jiasu train --json: figures that agree with each other -------------------------------
def _train_json(tmp_path: Path, mnist_dir: Path, target: str, name: str) -> dict[str, Any]:
    out = tmp_path / f"{name}.json"
    code = main([
        "train", "--model", "mlp", "--epochs", "2", "--train-samples", "1000",
        "--batch-size", "50", "--target-accuracy", target, "--data-dir", str(mnist_dir),
        "--json", str(out), "--quiet",
    ])  # fmt: skip
    assert code == 0
    data: dict[str, Any] = json.loads(out.read_text())
    return data


def _check_train_figures(data: dict[str, Any]) -> None:
    for key in ("train_seconds", "samples", "samples_per_s", "time_to_target_s"):
        assert data["definitions"][key]  # each figure says what it times and excludes
    epochs = data["history"]
    assert data["samples"] == sum(e["samples"] for e in epochs)
    assert data["train_seconds"] == pytest.approx(sum(e["train_seconds"] for e in epochs))
    assert data["samples_per_s"] * data["train_seconds"] == pytest.approx(data["samples"], rel=0.01)
    for e in epochs:
        assert e["samples_per_s"] * e["train_seconds"] == pytest.approx(e["samples"], rel=0.01)
    # every target check is on the same clock, within the training time
    assert all(0 < s <= data["train_seconds"] * 1.000001 for s, _ in data["accuracy_curve"])


def test_train_json_figures_agree_with_each_other(
    tmp_path: Path, mnist_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 1000 images, 20 % held out for validation: 800 per epoch; 100 % is never reached
    full = _train_json(tmp_path, mnist_dir, "1.0", "full")
    _check_train_figures(full)
    assert full["epochs_run"] == 2 and full["samples"] == 1600
    assert full["time_to_target_s"] is None
    # a target met: training stops at that step, so its time is all of train_seconds
    met = _train_json(tmp_path, mnist_dir, "0.3", "met")
    _check_train_figures(met)
    assert met["time_to_target_s"] is not None
    assert met["time_to_target_s"] <= met["train_seconds"] * 1.000001
    assert met["time_to_target_s"] == pytest.approx(met["train_seconds"], rel=1e-9)
    assert met["accuracy_curve"][-1][0] == pytest.approx(met["time_to_target_s"], rel=1e-9)
    assert 0 < met["samples"] <= 1600
    # the terminal table carries the same definitions as footnotes
    printed = capsys.readouterr().out
    assert "samples_per_s: samples / train_seconds" in printed
