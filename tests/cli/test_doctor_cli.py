"""`jiasu doctor`: hardware, dependencies with install commands, techniques; exit 0."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from jiasu.hardware.cpu import accel_features


def jiasu(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jiasu.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "JIASU_CACHE_DIR": str(cache), "COLUMNS": "200"},
    )


def test_doctor_prints_machine_software_and_techniques(tmp_path: Path) -> None:
    result = jiasu("doctor", cache=tmp_path)
    assert result.returncode == 0, result.stderr
    for text in (
        "CPU flags",
        "avx2",
        "memory",
        "Apple MPS",
        "torch",
        "onnxruntime",
        "mixed_precision",
        "doctor --measure",
    ):
        assert text in result.stdout, text
    # on a CPU-only machine the CUDA-only techniques say why they do not apply
    assert "cuda_graphs" in result.stdout


def test_doctor_json_is_complete(tmp_path: Path) -> None:
    result = jiasu("doctor", "--json", cache=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["kind"] == "jiasu.doctor"
    assert data["cpu"]["flags"]["avx2"] == accel_features()["avx2"]
    assert data["memory"]["total_bytes"] > 2**28
    packages = {p["name"]: p for p in data["packages"]}
    assert packages["torch"]["version"]
    for package in packages.values():  # every missing piece says how to install it
        assert package["version"] or package["install"].startswith("pip install")
    techniques = {t["name"]: t for t in data["techniques"]}
    assert techniques["threads"]["applies"] is True
    if not data["devices"]["cuda"]:
        assert techniques["cuda_graphs"]["applies"] is False
        assert "cuda" in techniques["cuda_graphs"]["reason"].lower()
    assert all(t["reason"] for t in data["techniques"])
    assert data["peak"] is None


def test_doctor_measure_caches_the_peak(tmp_path: Path) -> None:
    result = jiasu("doctor", "--measure", "--json", cache=tmp_path)
    assert result.returncode == 0, result.stderr
    cached = json.loads((tmp_path / "peak.json").read_text())
    assert cached["matmul_fp32_flops_per_s"] > 1e9 and cached["memory_bytes_per_s"] > 1e8
    assert json.loads(result.stdout)["peak"] == cached
