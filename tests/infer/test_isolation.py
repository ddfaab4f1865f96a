"""Which candidates get the final, isolated timing: a pure function of the screening."""

from __future__ import annotations

from jiasu.core.technique import Exactness
from jiasu.infer.backends import Candidate
from jiasu.infer.isolation import FAR_BEHIND_SLOW, finalists
from jiasu.infer.report import CandidateResult
from jiasu.measure import Measurement


def record(
    name: str, ms: float | None, verdict: str = "accepted", backend: str = "x"
) -> CandidateResult:
    candidate = Candidate(name, backend, {}, Exactness.NUMERIC)
    m = Measurement.from_seconds(name, (ms / 1e3,), items_per_call=4) if ms else None
    return CandidateResult(candidate, verdict, "", measurement=m)  # type: ignore[arg-type]


def test_the_baseline_and_the_three_fastest_accepted_of_each_runtime() -> None:
    records = [
        record("eager", 10.0, backend="torch"),
        record("int8", 0.5, verdict="rejected", backend="ort"),  # outside the budget
        record("ort", 1.0, backend="ort"),
        record("ort-spin", 1.1, backend="ort"),
        record("ort-1thread", 1.05, backend="ort"),
        record("ort-parallel", 1.15, backend="ort"),  # a fourth ORT: not a finalist
        record("ov-bf16", 3.5, backend="ov"),  # screened far behind, yet a finalist
        record("ov-int8", 3.0, backend="ov"),
        record("ov-fp32", 4.0, backend="ov"),
        record("broken", None, verdict="failed", backend="ov"),
        record("frozen", 1.2, backend="torch_optimized"),
        record("compiled", 4.5, backend="compile"),  # more than 4x behind the fastest: no
    ]
    assert finalists(records, "eager", "latency") == [
        "eager", "ort", "ort-1thread", "ort-spin", "frozen", "ov-int8", "ov-bf16", "ov-fp32",
    ]  # fmt: skip
    assert finalists(records, "eager", "throughput", limit=2) == ["eager", "ort", "ort-1thread"]


def test_only_the_baseline_when_nothing_else_is_accepted() -> None:
    records = [record("eager", 1.0), record("int8", 0.1, verdict="rejected")]
    assert finalists(records, "eager", "latency", limit=4) == ["eager"]


def test_the_report_keeps_at_most_max_samples_latencies_evenly_spaced() -> None:
    from jiasu.infer.report import MAX_SAMPLES

    candidate = Candidate("ort", "onnxruntime", {}, Exactness.NUMERIC)
    seconds = tuple(i * 1e-6 for i in range(50_000))  # a batch-1 run times this many calls
    m = Measurement.from_seconds("ort", seconds)
    data = CandidateResult(candidate, "accepted", "", measurement=m).to_dict()
    kept = data["latency_ms_samples"]
    assert len(kept) == MAX_SAMPLES and kept[0] == 0.0 and kept[-1] == 49.999
    assert kept == sorted(kept)  # in time order, evenly spread over the run
    assert data["repeats"] == 50_000  # the figures still come from every call
    assert data["latency_ms_p50"] == m.median_s * 1e3


def test_a_slow_screening_keeps_only_finalists_within_twice_the_fastest() -> None:
    # ViT-B/16 at batch 32 with data, seconds a call (the screening: one warm call each).
    records = [
        record("eager", 7200.0, backend="torch"),
        record("torch-optimized", 7400.0, backend="torch_optimized"),
        record("onnxruntime", 7300.0, backend="ort"),
        record("onnxruntime-int8", 3000.0, backend="ort"),
        record("openvino", 2870.0, backend="ov"),
        record("openvino-fp32", 5900.0, backend="ov"),
        record("openvino-latency-hint", 2940.0, backend="ov"),
    ]
    assert finalists(records, "eager", "latency", far_behind=FAR_BEHIND_SLOW) == [
        "eager", "openvino", "openvino-latency-hint", "onnxruntime-int8",
    ]  # fmt: skip
    assert len(finalists(records, "eager", "latency")) == 7  # within FAR_BEHIND: all of them
