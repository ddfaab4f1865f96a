"""Optimize reports name the task's metric: MSE for regression, agreement without labels,
and "accuracy not verified (no data)" when inputs were generated for timing only."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from jiasu.core.signature import InputSignature
from jiasu.core.task import Task
from jiasu.core.technique import Exactness
from jiasu.infer.backends.base import Candidate
from jiasu.infer.report import (
    CandidateResult,
    OptimizeResult,
    reason_lines,
    summary_line,
)
from jiasu.infer.verify import AccuracyBudget, judge, verify
from jiasu.report import from_result
from jiasu.report.html import render_html
from jiasu.report.model import Report
from jiasu.report.terminal import render_report

CANDIDATES = {  # name: (backend, exactness, relative output noise)
    "torch-eager": ("torch", Exactness.EXACT, 0.0),
    "onnxruntime": ("onnxruntime", Exactness.NUMERIC, 1e-7),
    "onnxruntime-int8": ("onnxruntime", Exactness.APPROXIMATE, 0.02),
}


def _result(
    labels: np.ndarray | None,
    budget: AccuracyBudget,
    *,
    verified: bool = True,
    shape: tuple[int, ...] = (2,),
) -> tuple[OptimizeResult, np.ndarray]:
    """An optimize result over three candidates, each verified and judged for real, of a
    linear model with outputs (500, *shape)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 8))
    reference = (x @ rng.normal(size=(8, int(np.prod(shape))))).reshape(500, *shape)
    task = Task.infer(labels, reference.shape)
    records = []
    for name, (backend, exactness, noise) in CANDIDATES.items():
        outputs = reference + noise * rng.normal(size=reference.shape) * reference.std()
        check = verify(reference, outputs, labels, task)
        ok, reason = judge(exactness, check, budget, task, verified=verified)
        records.append(
            CandidateResult(
                Candidate(name, backend, {}, exactness),
                "accepted" if ok else "rejected",
                reason,
                verification=check,
            )
        )
    return OptimizeResult(
        model="regressor",
        signature=InputSignature.from_shape((8,)),
        target="latency",
        batch_size=1,
        threads=1,
        budget=budget,
        validation_samples=500,
        candidates=tuple(records),
        baseline_name="torch-eager",
        chosen_name="onnxruntime",
        environment={},
        task=task,
        verified=verified,
    ), reference


def _rendered(data: dict[str, Any]) -> tuple[str, str]:
    """The terminal tables (as text) and the HTML page of a result's JSON."""
    report = Report(runs=tuple(from_result(json.loads(json.dumps(data)))))
    console = Console(width=240, record=True)
    console.print(*render_report(report))
    return console.export_text(), render_html(report)


def test_regression_report_shows_mse_and_its_budget_not_accuracy() -> None:
    rng = np.random.default_rng(1)
    budget = AccuracyBudget("relative", 0.01)
    result, reference = _result(None, budget)  # to get the reference for the labels
    labels = reference + rng.normal(scale=0.5, size=reference.shape)
    result, _ = _result(labels, budget)
    data = result.to_dict()
    assert data["schema_version"] == 3 and data["verified"] is True
    assert data["task"] == {"kind": "regression", "metric": "mse", "classes": None,
                            "higher_is_better": False}  # fmt: skip
    assert (
        data["budget"]["metric"] == "mse" and "MSE at most 1.00%" in data["budget"]["description"]
    )
    int8 = next(c for c in data["candidates"] if c["name"] == "onnxruntime-int8")
    assert int8["metric"] == "mse" and int8["accuracy"] is None and int8["top1_agreement"] is None
    assert int8["metric_delta"] == pytest.approx(int8["metric_value"] - int8["metric_reference"])
    lo, hi = int8["metric_delta_ci"]
    assert lo <= int8["metric_delta"] <= hi
    assert 0.99 < int8["cosine_similarity"] <= 1.0
    assert result.table_columns()[6] == "Δ MSE [95% CI]"
    assert "MSE" in summary_line(result) and "accuracy" not in summary_line(result)

    run = from_result(data)[0]
    assert run.accuracy_budget_points is None  # no accuracy budget in points is invented
    assert any("MSE on the labels" in n and "MSE at most 1.00%" in n for n in run.notes)
    entry = run.entry("onnxruntime-int8")
    assert entry is not None and entry.task_metric == "mse"
    assert entry.metric_value == pytest.approx(int8["metric_value"])
    text, html = _rendered(data)
    assert "MSE " in text and "accuracy budget" not in text
    assert "MSE " in html and "accuracy budget" not in html
    again = Report.from_dict(Report(runs=(run,)).to_dict()).runs[0].entry("onnxruntime-int8")
    assert again is not None and again.metric_delta_interval == entry.metric_delta_interval


def test_agreement_report_without_labels_names_cosine_similarity() -> None:
    result, _ = _result(None, AccuracyBudget("absolute", 0.001), shape=(2, 3))
    data = result.to_dict()
    assert data["task"]["metric"] == "agreement" and data["budget"]["metric"] == "agreement"
    int8 = next(c for c in data["candidates"] if c["name"] == "onnxruntime-int8")
    assert int8["metric_value"] == int8["cosine_similarity"] and int8["accuracy"] is None
    assert result.table_columns()[6] == "agreement w/ fp32 [95% CI]"
    assert "cos 0.99" in result.table_rows()[2][6]
    run = from_result(data)[0]
    assert any("agreement with fp32" in n for n in run.notes)
    text, html = _rendered(data)
    assert "agreement 0.99" in text and "cos 0.99" in html


def test_unverified_report_says_so_and_rejects_approximate_candidates() -> None:
    result, _ = _result(None, AccuracyBudget("absolute", 0.5), verified=False, shape=(2, 3))
    verdicts = {c.name: c.verdict for c in result.candidates}
    assert verdicts == {"torch-eager": "accepted", "onnxruntime": "accepted",
                        "onnxruntime-int8": "rejected"}  # fmt: skip
    assert (
        "approximate candidates (int8, bf16) are not accepted"
        in result.get("onnxruntime-int8").reason
    )
    assert "accuracy not verified (no data)" in summary_line(result)
    assert reason_lines(result)[0].startswith("accuracy not verified (no data)")
    assert {row[6] for row in result.table_rows()} == {"not verified"}
    data = result.to_dict()
    assert data["verified"] is False
    run = from_result(data)[0]
    assert run.accuracy_budget_points is None
    assert run.notes[0].startswith("accuracy not verified (no data)")
    text, html = _rendered(data)
    assert "accuracy not verified (no data)" in text
    assert "accuracy not verified (no data)" in html


def test_classification_report_keeps_the_accuracy_fields_of_schema_2() -> None:
    labels = np.arange(200) % 10
    reference = np.eye(10)[labels] * 5.0
    check = verify(reference, reference, labels)
    record = CandidateResult(Candidate("e", "torch", {}, Exactness.EXACT), "accepted", "ok",
                             verification=check).to_dict()  # fmt: skip
    assert record["accuracy"] == record["metric_value"] == 1.0
    assert record["accuracy_delta"] == 0.0 and record["accuracy_delta_ci"] == [0.0, 0.0]
    assert record["top1_agreement"] == 1.0 and record["metric"] == "accuracy"
