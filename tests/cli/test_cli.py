"""The `jiasu` command end to end, run as a user would run it (a real subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def jiasu(
    *args: str, env: dict[str, str] | None = None, timeout_s: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jiasu.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def offline_env(tmp_path: Path) -> dict[str, str]:
    """No MNIST anywhere and every mirror unreachable (a closed loopback port)."""
    return {
        "HOME": str(tmp_path / "home"),
        "JIASU_CACHE_DIR": str(tmp_path / "cache"),
        "JIASU_DATA_DIR": "",
        "JIASU_MNIST_MIRRORS": "http://127.0.0.1:9/",
    }


def test_help_lists_commands() -> None:
    result = jiasu("--help")
    assert result.returncode == 0
    assert "demo" in result.stdout
    result = jiasu("demo", "--help")
    assert result.returncode == 0 and "--quick" in result.stdout and "--json" in result.stdout


@pytest.mark.slow
def test_demo_quick_json_end_to_end(tmp_path: Path, mnist_dir: Path) -> None:
    out = tmp_path / "demo.json"
    result = jiasu("demo", "--quick", "--data-dir", str(mnist_dir), "--json", str(out))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "baseline" in result.stdout and "accelerated" in result.stdout
    report = json.loads(out.read_text())
    for side in ("baseline", "accelerated"):
        figures = report[side]
        assert figures["epochs"] == 1
        assert figures["train_seconds"] > 0 and figures["samples_per_s"] > 0
        assert figures["test_accuracy"] > 0.9  # one epoch of the founding MLP on real MNIST
    assert report["speedup"] == pytest.approx(
        report["baseline"]["train_seconds"] / report["accelerated"]["train_seconds"]
    )
    assert report["speedup"] > 1.0
    assert report["is_fallback"] is False and "MNIST" in report["data_source"]
    assert report["environment"]["torch"]


def test_demo_falls_back_to_bundled_digits_when_offline(
    tmp_path: Path, offline_env: dict[str, str]
) -> None:
    out = tmp_path / "demo.json"
    result = jiasu("demo", "--quick", "--quiet", "--json", str(out), env=offline_env)
    assert result.returncode == 0, result.stderr
    assert "--data-dir" in result.stderr and "JIASU_DATA_DIR" in result.stderr
    assert "scikit-learn" in result.stderr
    report = json.loads(out.read_text())
    assert report["is_fallback"] is True
    assert report["accelerated"]["test_accuracy"] > 0.5


def test_missing_data_dir_is_one_line_and_non_zero(tmp_path: Path) -> None:
    result = jiasu("demo", "--quick", "--data-dir", str(tmp_path / "nowhere"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:")
    assert "nowhere" in lines[0]


def test_corrupt_file_names_the_file(tmp_path: Path, mnist_dir: Path) -> None:
    data = tmp_path / "mnist"
    data.mkdir()
    for path in mnist_dir.glob("*.gz"):
        (data / path.name).write_bytes(path.read_bytes())
    broken = data / "t10k-labels-idx1-ubyte.gz"
    broken.write_bytes(broken.read_bytes()[:100])  # truncated gzip stream
    result = jiasu("demo", "--quick", "--data-dir", str(data))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "t10k-labels-idx1-ubyte.gz" in result.stderr


def test_bad_option_value_is_a_usage_error() -> None:
    result = jiasu("demo", "--epochs", "0")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "--epochs" in result.stderr
