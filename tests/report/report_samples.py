"""Result dicts shaped like each command's JSON, for the report tests."""

from __future__ import annotations

from typing import Any


def optimize_result() -> dict[str, Any]:
    """A `jiasu optimize` report.json with four candidates, one rejected, one failed."""

    def candidate(name: str, backend: str, p50: float, acc: float, **extra: Any) -> dict[str, Any]:
        latencies = [p50 * (1 + 0.02 * ((i * 7) % 11 - 5) / 5) for i in range(40)]
        return {
            "name": name,
            "backend": backend,
            "settings": extra.pop("settings", {}),
            "latency_ms_p50": p50,
            "latency_ms_p99": max(latencies) * 1.05,
            "latency_ms": latencies,
            "samples_per_s": 64 / p50 * 1e3,
            "accuracy": acc,
            "accuracy_delta": acc - 0.9790,
            "accuracy_delta_interval": [acc - 0.9790 - 0.002, acc - 0.9790 + 0.002],
            "max_abs_error": 0.0 if name == "eager" else 3e-3,
            "top1_agreement": 1.0 if name == "eager" else 0.996,
            "verdict": extra.pop("verdict", "accepted"),
            "reason": extra.pop("reason", ""),
        }

    eager = candidate("eager", "torch", 4.0, 0.9790, verdict="baseline")
    return {
        "kind": "optimize",
        "baseline": eager,
        "chosen": "onnxruntime-int8",
        "accuracy_budget": 0.005,
        "flops_per_sample": 4.1e5,
        "candidates": [
            eager,
            candidate("compile", "compile", 2.9, 0.9790),
            candidate("onnxruntime", "onnxruntime", 2.1, 0.9790),
            candidate(
                "onnxruntime-int8",
                "onnxruntime",
                1.3,
                0.9772,
                settings={"precision": "int8"},
            ),
            candidate(
                "dynamic-int8-aggressive",
                "torch",
                1.1,
                0.9650,
                verdict="rejected",
                reason="accuracy dropped 1.40 points, more than the 0.50-point budget",
            ),
            candidate(
                "channels_last", "torch", 4.6, 0.9790, verdict="accepted", reason="slower here"
            ),
        ],
        "skipped": [
            {
                "name": "openvino",
                "reason": "openvino is not installed: pip install 'jiasu[openvino]'",
            }
        ],
    }


def train_result() -> dict[str, Any]:
    """A `jiasu train` result with a baseline side and techniques kept and dropped."""

    def history(seconds: float, accs: list[float]) -> list[dict[str, Any]]:
        return [
            {
                "epoch": i + 1,
                "train_loss": 0.5 / (i + 1),
                "train_accuracy": a - 0.01,
                "val_loss": 0.4 / (i + 1),
                "val_accuracy": a,
                "lr": 1e-3,
                "train_seconds": seconds * (1 + 0.03 * i),
                "val_seconds": 0.2,
                "samples_per_s": 48000 / seconds,
            }
            for i, a in enumerate(accs)
        ]

    return {
        "kind": "train",
        "recipe": {"name": "fast", "techniques": [{"name": "device_data"}]},
        "techniques": {
            "kept": ["threads", "device_data", "fused_optimizer"],
            "dropped": [
                {"name": "bf16_autocast", "reason": "slower here: no AMX or AVX512-BF16 matmul"}
            ],
        },
        "epochs_run": 4,
        "train_seconds": 24.0,
        "time_to_target_s": 13.5,
        "test_accuracy": 0.9744,
        "samples_per_s": 8000.0,
        "history": history(6.0, [0.95, 0.963, 0.97, 0.974]),
        "baseline": {
            "recipe": {"name": "baseline", "techniques": []},
            "train_seconds": 60.0,
            "time_to_target_s": 31.0,
            "test_accuracy": 0.9751,
            "samples_per_s": 3200.0,
            "history": history(15.0, [0.951, 0.962, 0.971, 0.975]),
        },
    }
