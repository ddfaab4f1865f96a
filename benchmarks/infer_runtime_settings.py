"""How runtime settings change inference speed: the figures behind the backends' choices.

Each case runs alone in its own process (`jiasu.measure.isolated`, 10 rotated rounds of
blocks), on the same trained models and inputs, against eager PyTorch in the same run:

* small CNN, batch 256 — OpenVINO under the THROUGHPUT hint with one synchronous request
  (uses one of its streams), the same with the batch split over the streams (jiasu's
  `openvino`), and one request under the LATENCY hint (`openvino-latency-hint`); ONNX Runtime
  with 2 threads against two 1-thread runs side by side (`onnxruntime-parallel`);
* founding MLP, batch 1 — ONNX Runtime's `session.run` against jiasu's runner (an I/O
  binding made once per batch size), and that runner behind `Predictor`'s input check.

Run:  .venv/bin/python benchmarks/infer_runtime_settings.py --data-dir ../shared/data/mnist
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

import jiasu
from jiasu.core.signature import InputSignature
from jiasu.data import load_mnist
from jiasu.data.mnist import INPUT_SHAPE
from jiasu.infer.export import export_onnx
from jiasu.measure.benchmark import format_seconds
from jiasu.measure.isolated import Isolated, compare_isolated
from jiasu.models import ModelSpec, create_model, load_model_dir, save_model_dir
from jiasu.train.recipes import fast

HERE = (str(Path(__file__).resolve().parent),)


# Factories, imported by the timing workers: each returns the call to time.
def eager(model_dir: str, inputs: str) -> Callable[[], object]:
    model, x = load_model_dir(model_dir).model.eval(), torch.from_numpy(np.load(inputs))

    def run() -> object:
        with torch.no_grad():
            return model(x)

    return run


def openvino(onnx: str, inputs: str, hint: str, split: bool) -> Callable[[], object]:
    from jiasu.infer.backends.openvino import compile_model, request_runner

    settings = {"hint": hint, "threads": 2, "precision_hint": "default"}
    runner, x = request_runner(compile_model(onnx, settings), split), np.load(inputs)
    return lambda: runner(x)


def onnxruntime(onnx: str, inputs: str, threads: int, parallel: int) -> Callable[[], object]:
    from jiasu.infer.backends.onnxruntime import open_session, session_runner

    session = open_session(Path(onnx), {"threads": threads, "spinning": True})
    runner, x = session_runner(session, parallel), np.load(inputs)
    return lambda: runner(x)


def session_run(onnx: str, inputs: str) -> Callable[[], object]:
    from jiasu.infer.backends.onnxruntime import open_session

    session = open_session(Path(onnx), {"threads": 2, "spinning": True})
    feed, out = {session.get_inputs()[0].name: np.load(inputs)}, [session.get_outputs()[0].name]
    return lambda: session.run(out, feed)


def predictor(onnx: str, inputs: str) -> Callable[[], object]:
    from jiasu.infer.artifact import Predictor
    from jiasu.infer.backends.onnxruntime import open_session, session_runner

    runner = session_runner(open_session(Path(onnx), {"threads": 2, "spinning": True}))
    meta = {"candidate": {"name": "ort", "backend": "onnxruntime"}}
    signature = InputSignature.from_shape(INPUT_SHAPE)
    wrapped, x = Predictor(Path(onnx).parent, runner, meta, signature), np.load(inputs)
    return lambda: wrapped(x)


def _prepare(name: str, samples: int, batch: int, folder: Path) -> dict[str, str]:
    splits = load_mnist(ARGS.data_dir)
    torch.manual_seed(0)
    model = create_model(name)
    jiasu.fit(model, splits.train.take(samples), epochs=1, batch_size=64, recipe=fast(), quiet=True)
    model.eval()
    model_dir = save_model_dir(folder / name, model, ModelSpec(name))
    onnx = export_onnx(model, InputSignature.from_shape(INPUT_SHAPE), folder / f"{name}.onnx").path
    inputs = folder / f"{name}_b{batch}.npy"
    np.save(inputs, np.ascontiguousarray(splits.test.images[:batch].numpy()), allow_pickle=False)
    return {"model_dir": str(model_dir), "onnx": str(onnx), "inputs": str(inputs)}


def _case(factory: str, **kwargs: object) -> Isolated:
    return Isolated(f"infer_runtime_settings:{factory}", kwargs, HERE)


def _table(title: str, cases: dict[str, Isolated], seconds: float) -> str:
    comparison = compare_isolated(
        cases, baseline="eager PyTorch", seconds=seconds, rounds=10, items_per_call=1
    )
    lines = [f"## {title}", "", "| case | median | × eager [per-round p10–p90] |"]
    lines.append("|---|---:|---:|")
    for name, r in comparison.results.items():
        if r.measurement is None:
            lines.append(f"| {name} | failed: {r.error} | |")
            continue
        spread = r.speedup_summary
        band = f" [{spread.p10:.2f}–{spread.p90:.2f}]" if spread else ""
        lines.append(f"| {name} | {format_seconds(r.measurement.median_s)} | "
                     f"{r.speedup:.2f}×{band} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cnn = _prepare("cnn", 10_000, 256, Path(tmp))
        mlp = _prepare("mlp", 60_000, 1, Path(tmp))
        c = {"onnx": cnn["onnx"], "inputs": cnn["inputs"]}
        m = {"onnx": mlp["onnx"], "inputs": mlp["inputs"]}
        cnn_cases = {
            "eager PyTorch": _case("eager", model_dir=cnn["model_dir"], inputs=cnn["inputs"]),
            "OpenVINO THROUGHPUT, one request": _case(
                "openvino", **c, hint="THROUGHPUT", split=False
            ),
            "OpenVINO THROUGHPUT, batch split over streams": _case(
                "openvino", **c, hint="THROUGHPUT", split=True
            ),
            "OpenVINO LATENCY, one request": _case("openvino", **c, hint="LATENCY", split=False),
            "ONNX Runtime, 2 threads": _case("onnxruntime", **c, threads=2, parallel=1),
            "ONNX Runtime, two 1-thread runs side by side": _case(
                "onnxruntime", **c, threads=1, parallel=2
            ),
        }
        mlp_cases = {
            "eager PyTorch": _case("eager", model_dir=mlp["model_dir"], inputs=mlp["inputs"]),
            "ONNX Runtime session.run": _case("session_run", **m),
            "jiasu runner (I/O binding)": _case("onnxruntime", **m, threads=2, parallel=1),
            "jiasu runner behind Predictor": _case("predictor", **m),
        }
        text = _table("Small CNN, batch 256", cnn_cases, ARGS.measure_s)
        text += "\n" + _table("Founding MLP, batch 1", mlp_cases, ARGS.measure_s)
    print(text)
    if ARGS.markdown:
        from jiasu.core.atomic import atomic_write_text

        command = (
            "```\n.venv/bin/python benchmarks/infer_runtime_settings.py --data-dir "
            "../shared/data/mnist --markdown benchmarks/results_infer_settings.md\n```\n\n"
        )
        atomic_write_text(ARGS.markdown, "# Runtime settings, each alone\n\n" + command + text)


parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--data-dir", type=Path, default=None)
parser.add_argument("--measure-s", type=float, default=12.0)
parser.add_argument("--markdown", type=Path, default=None, help="write results here")

if __name__ == "__main__":
    ARGS = parser.parse_args()
    main()
