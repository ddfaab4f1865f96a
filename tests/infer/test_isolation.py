"""Which candidates get the final, isolated timing: a pure function of the screening."""

from __future__ import annotations

from jiasu.core.technique import Exactness
from jiasu.infer.backends import Candidate
from jiasu.infer.isolation import finalists
from jiasu.infer.report import CandidateResult
from jiasu.measure import Measurement


def record(name: str, ms: float | None, verdict: str = "accepted") -> CandidateResult:
    candidate = Candidate(name, "x", {}, Exactness.NUMERIC)
    m = Measurement.from_seconds(name, (ms / 1e3,), items_per_call=4) if ms else None
    return CandidateResult(candidate, verdict, "", measurement=m)  # type: ignore[arg-type]


def test_the_baseline_and_the_fastest_accepted_within_twice_the_leader() -> None:
    records = [
        record("eager", 10.0),
        record("int8", 0.5, verdict="rejected"),  # outside the budget: never a finalist
        record("ort", 1.0),
        record("ov", 1.9),  # screening may misjudge a runtime: still within 2×
        record("compile", 2.5),  # more than twice the leader's time
        record("broken", None, verdict="failed"),
        record("frozen", 1.2),
    ]
    assert finalists(records, "eager", "latency", limit=4) == ["eager", "ort", "frozen", "ov"]
    assert finalists(records, "eager", "throughput", limit=2) == ["eager", "ort", "frozen"]


def test_only_the_baseline_when_nothing_else_is_accepted() -> None:
    records = [record("eager", 1.0), record("int8", 0.1, verdict="rejected")]
    assert finalists(records, "eager", "latency", limit=4) == ["eager"]
