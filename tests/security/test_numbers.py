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
from jiasu.core.technique import Exactness
from jiasu.infer.backends.base import Candidate
from jiasu.infer.report import CandidateResult, OptimizeResult, summary_line
from jiasu.infer.verify import AccuracyBudget
from jiasu.measure.benchmark import CaseResult, Comparison, Measurement
from jiasu.measure.isolated import _comparison as isolated_comparison

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
        model="cnn", input_shape=(1, 28, 28), target="latency", batch_size=1, threads=1,
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
