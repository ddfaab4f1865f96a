"""Fixtures for the report tests: one result of every kind, and a measured-looking peak."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from jiasu.hardware.peak import Peak

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import report_samples as samples  # noqa: E402


@pytest.fixture
def demo_result() -> dict[str, Any]:
    """A real `jiasu demo --quick` result on MNIST (1 epoch per side), as written by --json."""
    data: dict[str, Any] = json.loads((HERE / "data" / "demo_mnist_quick.json").read_text())
    return data


@pytest.fixture
def optimize_result() -> dict[str, Any]:
    return samples.optimize_result()


@pytest.fixture
def train_result() -> dict[str, Any]:
    return samples.train_result()


@pytest.fixture
def comparison_result() -> dict[str, Any]:
    """A real `compare` of three cases, one of them failing."""
    import torch

    from jiasu.measure import capture_environment, compare

    x = torch.randn(128, 128)
    xb = x.bfloat16()

    def broken() -> None:
        raise RuntimeError("backend crashed")

    comparison = compare(
        {"fp32": lambda: x @ x, "bf16": lambda: xb @ xb, "broken": broken},
        baseline="fp32",
        repeats=8,
        warmup=1,
    )
    return {"comparison": comparison.to_dict(), "environment": capture_environment("cpu")}


@pytest.fixture
def peak() -> Peak:
    return Peak(
        matmul_fp32_flops_per_s=300e9,
        matmul_bf16_flops_per_s=1900e9,
        memory_bytes_per_s=30e9,
        threads=2,
        device="cpu",
        cpu_model="test CPU",
        hostname="test",
        torch="2.13.0",
        measured_at="2026-11-30T00:00:00+00:00",
        matmul_size=2048,
    )
