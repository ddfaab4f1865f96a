"""Terminal tables and the HTML page: what they show, and that absent sections are fine."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from rich.console import Console

from jiasu.hardware.peak import Peak
from jiasu.report import Entry, Report, Run, build_report, write_html, write_json
from jiasu.report.html import render_html
from jiasu.report.plots import pareto_front, run_plots
from jiasu.report.terminal import render_report


def _text(report: Report) -> str:
    console = Console(width=200, record=True, color_system=None)
    console.print(*render_report(report))
    return console.export_text()


def test_pareto_front_matches_hand_reference() -> None:
    points = [(4.0, 97.9), (2.9, 97.9), (2.1, 97.9), (1.3, 97.7), (1.1, 96.5), (4.6, 97.9)]
    assert sorted(pareto_front(points)) == [2, 3, 4]
    assert pareto_front([]) == []


def test_terminal_marks_slower_and_keeps_brackets(optimize_result: dict[str, Any]) -> None:
    text = _text(build_report([optimize_result], peak=None))
    assert "1.15× slower" in text  # channels_last: 4.6 ms / eager 4.0 ms
    assert "3.08× faster" in text and "baseline" in text
    assert "-0.18 [-0.38, +0.02]" in text
    assert "pip install 'jiasu[openvino]'" in text  # rich markup did not eat the extra
    assert "rejected" in text and "doctor --measure" in text


def test_terminal_shows_share_of_peak(demo_result: dict[str, Any], peak: Peak) -> None:
    from jiasu.report import from_demo

    report = build_report([from_demo(demo_result, flops_per_sample=4.09e5)], peak=peak)
    text = _text(report)
    assert re.search(r"MFLOP/s = 0\.\d+%", text)
    assert "the 300 GFLOP/s fp32 peak measured" in text and "noise unknown" in text


def test_html_is_self_contained_with_every_plot(
    demo_result: dict[str, Any],
    optimize_result: dict[str, Any],
    train_result: dict[str, Any],
    comparison_result: dict[str, Any],
    peak: Peak,
    tmp_path: Path,
) -> None:
    report = build_report(
        [demo_result, optimize_result, train_result, comparison_result], peak=peak
    )
    path = write_html(report, tmp_path / "r.html")
    page = path.read_text()
    assert page.startswith("<!DOCTYPE html>")
    # nothing is fetched: no scripts, stylesheets, images or fonts from elsewhere
    assert not re.search(r"<(script|link|img|iframe)\b", page)
    assert not re.search(r"(src|href)=\"https?:", page) and "@import" not in page
    plots = re.findall(r'data-plot="(\w+)"', page)
    assert {"speedup", "latency", "accuracy", "curves", "peak"} <= set(plots)
    assert page.count("<svg") == len(plots)
    assert "bf16_autocast" in page and "slower here" in page  # dropped, with its reason
    assert "AMD EPYC" in page or demo_result["environment"]["cpu_model"] in page
    json_path = write_json(report, tmp_path / "r.json")
    assert json_path.read_text().startswith("{")


def test_every_plot_is_optional() -> None:
    bare = Run("benchmark", "just names", "a", (Entry("a"), Entry("b")))
    assert run_plots(bare, None) == {}
    page = render_html(Report((bare,)))
    assert "just names" in page and "<svg" not in page
    assert "Nothing was skipped" in page and "No environment" not in page
    assert "no runs" in render_html(Report(()))
    assert "just names" in _text(Report((bare,)))


def test_write_html_takes_a_plain_result_dict(
    optimize_result: dict[str, Any], tmp_path: Path
) -> None:
    path = write_html(optimize_result, tmp_path / "sub" / "opt.html")
    assert "onnxruntime-int8" in path.read_text()
