"""Inference on MNIST: eager PyTorch against each backend against jiasu's pick, in one run.

For the founding MLP and the small CNN, both trained here for one epoch with `jiasu.fit`
and the `fast` recipe (real weights, so the accuracy budget is checked on real
predictions), and for two cells — batch-1 latency and batch-256 throughput — this script

1. runs `jiasu.infer.optimize` over every backend (each candidate verified on 10,000
   MNIST test images, screened interleaved against eager fp32, the finalists timed again
   alone), and
2. times head to head eager PyTorch, each runtime configured by hand the way its
   documentation starts (`benchmarks/hand_configured.py`: torch.compile(), an ONNX
   Runtime session with default options, OpenVINO's compile_model with default settings)
   and jiasu's pick loaded back from disk with `jiasu.load` (its input checks included),
   each alone in its own process as it would be deployed, in 10 rotated rounds of blocks
   (`jiasu.measure.isolated`); speedups with the p10–p90 of the per-round ratios.

Run:  .venv/bin/python benchmarks/infer_mnist.py --data-dir ../shared/data/mnist \
          --markdown benchmarks/results_infer.md
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import jiasu
from jiasu.core.atomic import atomic_write_text
from jiasu.core.signature import InputSignature
from jiasu.data import DatasetSplits, load_mnist
from jiasu.data.mnist import INPUT_SHAPE
from jiasu.hardware.cpu import accel_features, cpu_info
from jiasu.infer import ModelSource, OptimizeConfig, optimize
from jiasu.infer.report import TIMED_LABELS, OptimizeResult
from jiasu.measure.benchmark import format_rate, format_seconds
from jiasu.measure.environment import capture_environment
from jiasu.measure.isolated import Isolated, compare_isolated
from jiasu.models import ModelSpec, create_model, save_model_dir
from jiasu.train.recipes import fast

CELLS = (("latency", 1), ("throughput", 256))
TARGETS = {  # (model, target) -> minimum speedup of the pick over eager
    ("cnn", "latency"): 6.0,
    ("cnn", "throughput"): 10.0,
}
MLP_LATENCY_TARGET_US = 12.0


def train(name: str, splits: DatasetSplits, samples: int) -> tuple[nn.Module, float]:
    torch.manual_seed(0)
    model = create_model(name)
    start = time.perf_counter()
    jiasu.fit(model, splits.train.take(samples), epochs=1, batch_size=64, recipe=fast(), quiet=True)
    return model.eval(), time.perf_counter() - start


HAND_CONFIGURED = {  # case name -> factory in benchmarks/hand_configured.py
    "eager (no_grad)": "eager",
    "torch.compile()": "compiled",
    "onnxruntime (defaults)": "onnxruntime_defaults",
    "openvino (defaults)": "openvino_defaults",
}
PICK = "jiasu pick (jiasu.load)"


def export_plain_onnx(model: nn.Module, path: Path) -> Path:
    """The model as ONNX the way torch.onnx's first example exports it (dynamic batch)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (torch.zeros(1, 1, 28, 28),), str(path), dynamo=False,
            input_names=["input"], dynamic_axes={"input": {0: "batch"}},
        )  # fmt: skip
    return path


def head_to_head(
    model_dir: Path, onnx_path: Path, artifact: Path, batch: np.ndarray, seconds: float
) -> dict[str, Any]:
    """Eager, each runtime configured by hand and jiasu's pick, each alone in its own process,
    timed in rotated rounds of blocks (`jiasu.measure.isolated`)."""
    inputs = artifact.parent / "inputs.npy"
    np.save(inputs, batch, allow_pickle=False)
    here = (str(Path(__file__).resolve().parent),)
    cases: dict[str, Isolated] = {}
    for case, factory in HAND_CONFIGURED.items():
        source = str(model_dir) if factory in ("eager", "compiled") else str(onnx_path)
        key = "model_dir" if factory in ("eager", "compiled") else "onnx_path"
        cases[case] = Isolated(
            f"hand_configured:{factory}", {key: source, "inputs": str(inputs)}, here
        )
    cases[PICK] = Isolated(
        "jiasu.infer.isolation:timed_predictor",
        {"directory": str(artifact), "inputs": str(inputs)},
    )
    comparison = compare_isolated(
        cases, baseline="eager (no_grad)", seconds=seconds, rounds=10, warmup=10,
        items_per_call=len(batch),
    )  # fmt: skip
    rows = {}
    for name, case in comparison.results.items():
        m, ratio = case.measurement, case.speedup_summary
        rows[name] = {
            "median_s": m.median_s if m else None,
            "p10_s": m.summary.p10 if m else None,
            "p90_s": m.summary.p90 if m else None,
            "samples_per_s": m.items_per_s if m else None,
            "speedup": case.speedup,
            "speedup_p10": ratio.p10 if ratio else None,
            "speedup_p90": ratio.p90 if ratio else None,
            "error": case.error,
        }
    return rows


def optimize_table(result: OptimizeResult) -> list[str]:
    lines = [
        "| candidate | p50 | p99 | samples/s | × eager | timed | Δ acc, points [95% CI] "
        "| verdict |",
        "|---|---:|---:|---:|---:|---|---:|---|",
    ]
    for c in result.candidates:
        v = c.verification
        delta = "—"
        if v is not None and np.isfinite(v.accuracy_delta):
            delta = (f"{v.accuracy_delta * 100:+.2f} [{v.delta_ci[0] * 100:+.2f}, "
                     f"{v.delta_ci[1] * 100:+.2f}]")  # fmt: skip
        star = "**★ " if c.name == result.chosen_name else ""
        p50 = format_seconds(c.latency_ms_p50 / 1e3) if c.latency_ms_p50 else "—"
        p99 = format_seconds(c.latency_ms_p99 / 1e3) if c.latency_ms_p99 else "—"
        rate = format_rate(c.samples_per_s) if c.samples_per_s else "—"
        speed = f"{c.speedup:.2f}×" if c.speedup else "—"
        verdict = c.verdict if c.verdict == "accepted" else f"{c.verdict}: {c.reason}"
        name = f"{star}{c.name}**" if star else c.name
        timed = TIMED_LABELS.get(c.timing or "", "—")
        lines.append(
            f"| {name} | {p50} | {p99} | {rate} | {speed} | {timed} | {delta} | {verdict} |"
        )
    return lines


def head_to_head_table(h2h: dict[str, Any]) -> list[str]:
    lines = [
        "| case | median | p10–p90 | samples/s | × eager [per-round p10–p90] |",
        "|---|---:|---:|---:|---:|",
    ]
    for case, row in h2h.items():
        if row["median_s"] is None:
            lines.append(f"| {case} | failed: {row['error']} | | | |")
            continue
        lines.append(
            f"| {case} | {format_seconds(row['median_s'])} | "
            f"{format_seconds(row['p10_s'])} – {format_seconds(row['p90_s'])} | "
            f"{format_rate(row['samples_per_s'])} | {row['speedup']:.2f}× "
            f"[{row['speedup_p10']:.2f}–{row['speedup_p90']:.2f}] |"
        )
    return lines


def verdict_line(name: str, target: str, result: OptimizeResult, h2h: dict[str, Any]) -> str:
    """The cell's figures against the issue's targets, met or missed."""
    pick = h2h[PICK]
    hands = {k: r for k, r in h2h.items() if k != PICK and r["speedup"]}
    best_name = max(hands, key=lambda k: hands[k]["speedup"])
    best = hands[best_name]
    ratio = pick["speedup"] / best["speedup"]
    # "Within noise": the pick's per-round speedups reach the best backend's median.
    within = ratio >= 1.0 or pick["speedup_p90"] >= best["speedup"]
    line = (
        f"pick {result.chosen_name}: {pick['speedup']:.2f}× eager, "
        f"{ratio:.2f}× the best hand-configured backend ({best_name}; "
        f"target ≥ 1.0× within noise: {'met' if within else 'MISSED'})"
    )
    floor = TARGETS.get((name, target))
    if floor is not None:
        met = "met" if pick["speedup"] >= floor else "MISSED"
        line += f" (target ≥ {floor:.0f}× eager: {met})"
    if name == "mlp" and target == "latency":
        us = pick["median_s"] * 1e6
        met = "met" if us <= MLP_LATENCY_TARGET_US else "MISSED"
        line += f"; median {us:.1f} µs (target ≤ {MLP_LATENCY_TARGET_US:.0f} µs: {met})"
    v = result.chosen.verification
    if v is not None:
        line += f"; accuracy {v.accuracy_delta * 100:+.2f} points vs fp32"
    return line


def run(args: argparse.Namespace) -> str:
    splits = load_mnist(args.data_dir)
    val = splits.test
    images, labels = val.images.numpy(), val.labels.numpy()
    calibration = splits.train.images[-300:].numpy()
    load_before = os.getloadavg()
    info = cpu_info()
    features = [k for k, v in accel_features(info).items() if v]
    out: list[str] = [
        "# Inference on MNIST: eager vs each backend vs jiasu's pick",
        "",
        "Command (2-core CPU, same run for every number below):",
        "",
        "```",
        "  .venv/bin/python benchmarks/infer_mnist.py --data-dir ../shared/data/mnist "
        "--markdown benchmarks/results_infer.md",
        "```",
        "",
        f"CPU: {info.model}, {torch.get_num_threads()} threads; features: {', '.join(features)}. "
        f"torch {torch.__version__}.",
        "Models trained here for one epoch with `jiasu.fit` and the `fast` recipe "
        f"(MLP on {args.mlp_samples:,} images, CNN on {args.cnn_samples:,}); every candidate "
        f"verified on the {len(images):,} MNIST test images.",
        "",
    ]
    header_len = len(out)
    summary: list[str] = []
    raw: dict[str, Any] = {"environment": capture_environment("cpu"), "cells": {}}
    for name, samples in (("mlp", args.mlp_samples), ("cnn", args.cnn_samples)):
        model, train_s = train(name, splits, samples)
        print(f"trained {name} in {train_s:.1f} s", flush=True)
        source = ModelSource(
            "torch", InputSignature.from_shape(INPUT_SHAPE), f"{name} (trained here)", model,
            reference={"kind": "registry", "spec": ModelSpec(name).to_dict()},
        )  # fmt: skip
        for target, batch in CELLS:
            with tempfile.TemporaryDirectory() as tmp:
                artifact = Path(tmp) / "artifact"
                config = OptimizeConfig(target, batch, measure_s=args.measure_s)  # type: ignore[arg-type]
                result = optimize(source, images, labels, calibration, config, out=artifact)
                model_dir = save_model_dir(Path(tmp) / "model", model, ModelSpec(name))
                onnx_path = export_plain_onnx(model, Path(tmp) / "model.onnx")
                x = np.ascontiguousarray(images[:batch])
                h2h = head_to_head(model_dir, onnx_path, artifact, x, args.measure_s)
            cell = f"{name}, {target} at batch {batch}"
            print(f"{cell}: chose {result.chosen_name}", flush=True)
            raw["cells"][cell] = {"optimize": result.to_dict(), "head_to_head": h2h}
            out += [f"## {cell}", "", f"`jiasu optimize` candidates (chosen: ★ "
                    f"{result.chosen_name}; × eager from the same stage: screened ones against "
                    "the screened eager, the finalists alone against eager alone):",
                    ""]  # fmt: skip
            out += optimize_table(result)
            out += ["", "Head to head, each alone in its own process (median, p10–p90):", ""]
            out += head_to_head_table(h2h)
            line = f"{cell}: " + verdict_line(name, target, result, h2h)
            summary.append(f"- {line}")
            out += ["", f"→ {line}", ""]
    load_after = os.getloadavg()
    note = (
        f"Load average (1 min) {load_before[0]:.1f} at the start and {load_after[0]:.1f} at "
        "the end: above 2 on this 2-core machine means other processes shared the cores."
    )
    out[header_len:header_len] = ["## Summary", "", note, "", *summary, ""]
    if args.json:
        atomic_write_text(args.json, json.dumps(raw, indent=2, default=str) + "\n")
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--markdown", type=Path, default=None, help="write results here")
    parser.add_argument("--json", type=Path, default=None, help="write raw results here")
    parser.add_argument("--mlp-samples", type=int, default=60_000)
    parser.add_argument("--cnn-samples", type=int, default=10_000)
    parser.add_argument("--measure-s", type=float, default=8.0)
    args = parser.parse_args()
    text = run(args)
    print(text)
    if args.markdown:
        atomic_write_text(args.markdown, text)


if __name__ == "__main__":
    main()
