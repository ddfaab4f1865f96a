"""`jiasu report` and `jiasu demo --html`, run as a user would run them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "tests" / "report" / "data" / "demo_mnist_quick.json"
sys.path.insert(0, str(REPO / "tests" / "report"))

import report_samples  # noqa: E402


def jiasu(*args: str, home: Path, timeout_s: float = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "JIASU_CACHE_DIR": str(home / "cache"), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "jiasu.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=env,
    )


def test_report_combines_results_into_html_and_json(tmp_path: Path) -> None:
    optimize = tmp_path / "optimize.json"
    optimize.write_text(json.dumps(report_samples.optimize_result()))
    html, out = tmp_path / "report.html", tmp_path / "report.json"
    result = jiasu(
        "report", str(DEMO), str(optimize), "-o", str(html), "--json", str(out), home=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "1.27× faster" in result.stdout and "1.15× slower" in result.stdout
    assert "doctor --measure" in result.stdout  # no peak cached in this home
    assert html.read_text().count('<figure class="plot"') >= 6
    data = json.loads(out.read_text())
    assert data["schema_version"] == 2 and [r["kind"] for r in data["runs"]] == [
        "demo",
        "optimize",
    ]
    # a report's JSON is an input too
    again = jiasu("report", str(out), home=tmp_path)
    assert again.returncode == 0 and "onnxruntime-int8" in again.stdout


def test_report_reads_the_measured_peak(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    peak = {
        "matmul_fp32_flops_per_s": 3e11,
        "matmul_bf16_flops_per_s": 1.9e12,
        "memory_bytes_per_s": 3e10,
        "threads": 2,
    }
    (cache / "peak.json").write_text(json.dumps(peak))
    optimize = tmp_path / "optimize.json"
    optimize.write_text(json.dumps(report_samples.optimize_result()))
    result = jiasu("report", str(optimize), home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "300 GFLOP/s fp32 peak" in result.stdout and "6.56 GFLOP/s = 2.2%" in result.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "does not exist"), ("{oops", "not valid JSON"), ('{"a": 1}', "not a jiasu result")],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "in.json"
    if content is not None:
        path.write_text(content)
    result = jiasu("report", str(path), home=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_demo_writes_an_html_report(tmp_path: Path, mnist_dir: Path) -> None:
    html, out = tmp_path / "demo.html", tmp_path / "demo.json"
    result = jiasu(
        "demo",
        "--quick",
        "--quiet",
        "--data-dir",
        str(mnist_dir),
        "--json",
        str(out),
        "--html",
        str(html),
        home=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    page = html.read_text()
    assert 'data-plot="curves"' in page and 'data-plot="speedup"' in page
    assert json.loads(out.read_text())["kind"] == "demo"
