"""The model zoo: eager vs each runtime configured by hand vs jiasu's pick, in one run.

Real architectures with random weights built from `transformers` configs (nothing can be
downloaded here; speed and agreement are still real): ResNet-50, ViT-B/16, BERT-base and
DistilBERT at sequence 128, a tabular MLP on 30 features and a GRU classifier
(`benchmarks/zoo_models.py`). For each model and each cell — batch 1 (latency) and batch 32
(throughput) — this script times, each alone in its own process in rotated rounds of
blocks (`jiasu.measure.isolated`, as `benchmarks/infer_mnist.py` does):

* eager fp32: the model under `torch.no_grad()`, the baseline of the cell;
* each runtime as a user configures it by hand: the model exported with `torch.onnx.export`
  (dynamo, named dynamic axes), run by ONNX Runtime with default options, by OpenVINO's
  `compile_model` with default settings, and by OpenVINO after `nncf.quantize` to int8
  (the transformer scheme for BERT, DistilBERT and ViT), calibrated on the user's data;
* jiasu's pick from `jiasu.optimize`, saved and loaded back with `jiasu.load` — twice:
  with exact candidates only (no data: inputs generated from the signature, timing
  only), and with data and labels, where int8 may be accepted. The labels are the eager
  fp32 model's own predictions on held-out generated inputs, so the metric verified is
  **agreement with fp32**, not accuracy (random weights have no accuracy to keep).

Every row's top-1 agreement with eager fp32 is measured on a further test set that no
candidate saw. Run (full, about an hour on 2 cores):

    nice .venv/bin/python benchmarks/zoo.py --markdown benchmarks/results_zoo.md

and a smoke run in about a minute: ``.venv/bin/python benchmarks/zoo.py --quick --models mlp``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from zoo_models import BUILDERS, ZooModel  # the folder is on sys.path, not a package

HERE = str(Path(__file__).resolve().parent)
TRANSFORMERS = ("bert", "distilbert", "vit")  # NNCF's transformer scheme applies
CELLS = {1: "latency", 32: "throughput"}
EAGER = "eager fp32"
ORT = "onnxruntime (defaults)"
OV = "openvino (defaults)"
OV_INT8 = "openvino + nncf int8"
PICK_EXACT = "jiasu pick, exact (no data)"
PICK_DATA = "jiasu pick, with data"
PRECISION = {EAGER: "fp32", ORT: "fp32", OV: "fp32", OV_INT8: "int8"}
# OpenVINO's CPU plugin computes in bf16 by default where the CPU has bf16 units (AMX,
# AVX-512 BF16): its "defaults" row is then not in the exact class. Filled in by `main`.
OV_DEFAULT_PRECISION = "openvino_default_precision"


def openvino_default_precision() -> str:
    """What `compile_model(path, "CPU")` computes in on this machine: fp32 or bf16/fp16."""
    import openvino as ov

    hint = ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT")
    return "fp32" if hint == ov.Type.f32 else hint.get_type_name()


def _ov_note(raw: dict[str, Any]) -> str:
    if precision(raw, OV) == "fp32":
        return "."
    return " (its bf16 units): that row is not in the exact class the no-data pick is held to."


def precision(raw: dict[str, Any], case: str) -> str:
    if case == OV:
        return raw.get(OV_DEFAULT_PRECISION, "fp32")
    return PRECISION[case]


HEAVY = ("resnet50", "vit", "bert", "distilbert")
TARGET_SPEEDUPS = {"resnet50": 5.0, "bert": 4.3}  # pick with int8 admitted, batch 1
OPTIMIZE_LIMIT_S = 300.0


# --- worker factories: each builds one runtime in a fresh process -----------------------


def _saved(inputs: str) -> list[np.ndarray]:
    with np.load(inputs, allow_pickle=False) as saved:
        return [saved[f"arr_{i}"] for i in range(len(saved.files))]


def eager(model: str, quick: bool, inputs: str) -> Callable[[], object]:
    """The model in PyTorch eager mode under `torch.no_grad()`, called as its user calls it."""
    z = BUILDERS[model](quick)
    tensors = [torch.from_numpy(a) for a in _saved(inputs)]
    kwargs = dict(zip(z.names, tensors, strict=True)) if z.keyword else None

    def run() -> object:
        with torch.no_grad():
            return z.module(**kwargs) if kwargs is not None else z.module(*tensors)

    return run


def onnxruntime_defaults(path: str, inputs: str) -> Callable[[], object]:
    """`ort.InferenceSession(path)` with default options on the CPU provider."""
    import onnxruntime as ort

    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    feeds = {i.name: a for i, a in zip(session.get_inputs(), _saved(inputs), strict=True)}
    return lambda: session.run(None, feeds)


def openvino_defaults(path: str, inputs: str) -> Callable[[], object]:
    """`ov.Core().compile_model(path, "CPU")` with default settings (ONNX or IR file)."""
    import openvino as ov

    compiled = ov.Core().compile_model(path, "CPU")
    arrays = _saved(inputs)
    return lambda: compiled(arrays)


# --- preparing the hand-configured files -----------------------------------------------


@dataclass
class Prepared:
    """What one model's rows need: files, data sets and how long each step took."""

    z: ZooModel
    folder: Path
    data: tuple[np.ndarray, ...]  # the user's data: jiasu verifies (and calibrates) on it
    labels: np.ndarray  # eager fp32's top-1 on `data`
    test: tuple[np.ndarray, ...]  # held out from everything; agreement is measured on it
    test_logits: np.ndarray  # eager fp32 on `test`
    onnx: Path | None = None
    int8: Path | None = None
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


@contextlib.contextmanager
def _timed(prepared: Prepared, step: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        prepared.seconds[step] = time.perf_counter() - start


def eager_logits(z: ZooModel, arrays: Sequence[np.ndarray], batch: int = 32) -> np.ndarray:
    out = []
    with torch.no_grad():
        for i in range(0, len(arrays[0]), batch):
            chunk = [torch.from_numpy(a[i : i + batch]) for a in arrays]
            if z.keyword:
                result = z.module(**dict(zip(z.names, chunk, strict=True)))
            else:
                result = z.module(*chunk)
            logits = result if isinstance(result, torch.Tensor) else result["logits"]
            out.append(logits.numpy())
    return np.concatenate(out)


def _dynamic_shapes(z: ZooModel) -> dict[str, dict[int, Any]]:
    """Per input, its symbolic axes as `torch.export.Dim`s shared across inputs by name."""
    from torch.export import Dim

    dims: dict[str, Any] = {}
    shapes = {}
    for name, symbols in zip(z.names, z.symbolic, strict=True):
        axes = {}
        for axis, symbol in enumerate(symbols):
            if symbol:
                # BERT-style position embeddings stop at 512 tokens
                default = Dim(symbol, max=512) if symbol == "S" else Dim(symbol)
                axes[axis] = dims.setdefault(symbol, default)
        shapes[name] = axes
    return shapes


def export_by_hand(p: Prepared) -> None:
    """`torch.onnx.export` as its documentation shows it (dynamo), dynamic batch (and
    sequence); the TorchScript exporter only if that fails, with the reason noted."""
    z, path = p.z, p.folder / "model.onnx"
    example = [torch.from_numpy(a) for a in z.make_inputs(2, 0)]  # batch 2: not specialised
    common = {"input_names": list(z.names), "output_names": ["logits"], "external_data": False}
    shapes = _dynamic_shapes(z)
    with _timed(p, "export"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if z.keyword:
                kwargs = dict(zip(z.names, example, strict=True))
                torch.onnx.export(
                    z.module, (), str(path), kwargs=kwargs, dynamo=True,
                    dynamic_shapes=shapes, **common,
                )  # fmt: skip
            else:
                torch.onnx.export(
                    z.module, tuple(example), str(path), dynamo=True,
                    dynamic_shapes=tuple(shapes.values()), **common,
                )  # fmt: skip
        except Exception as exc:  # recorded, then the legacy exporter
            p.notes.append(f"dynamo export failed ({_first_line(exc)}); used dynamo=False")
            axes = {n: {a: s for a, s in enumerate(sy) if s} for n, sy in
                    zip(z.names, z.symbolic, strict=True)}  # fmt: skip
            torch.onnx.export(
                _Positional(z), tuple(example), str(path), dynamo=False, opset_version=17,
                input_names=list(z.names), output_names=["logits"],
                dynamic_axes={**axes, "logits": {0: "B"}},
            )  # fmt: skip
    p.onnx = path


class _Positional(torch.nn.Module):
    def __init__(self, z: ZooModel) -> None:
        super().__init__()
        self.module, self.names, self.keyword = z.module, z.names, z.keyword

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        if self.keyword:
            result = self.module(**dict(zip(self.names, inputs, strict=True)))
        else:
            result = self.module(*inputs)
        return result if isinstance(result, torch.Tensor) else result["logits"]


def quantize_by_hand(p: Prepared, samples: int) -> None:
    """`nncf.quantize` on the OpenVINO model read from the ONNX file, calibrated on the
    first `samples` of the user's data one sample at a time (as NNCF's examples do)."""
    import nncf
    import openvino as ov

    assert p.onnx is not None
    kind = {"model_type": nncf.ModelType.TRANSFORMER} if p.z.name in TRANSFORMERS else {}
    rows = min(samples, len(p.data[0]))
    items = [{n: a[i : i + 1] for n, a in zip(p.z.names, p.data, strict=True)}
             for i in range(rows)]  # fmt: skip
    with _timed(p, "nncf int8"):
        model = ov.convert_model(str(p.onnx))
        quantized = nncf.quantize(model, nncf.Dataset(items), subset_size=rows, **kind)
        path = p.folder / "int8.xml"
        ov.save_model(quantized, str(path), compress_to_fp16=False)
    p.int8 = path


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:160]}" if text else type(exc).__name__


# --- agreement with eager fp32 on the test set ---------------------------------------


def agreement(logits: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Top-1 agreement and the largest absolute difference, against eager fp32."""
    logits = np.asarray(logits, dtype=np.float32).reshape(reference.shape)
    return {
        "top1": float((logits.argmax(1) == reference.argmax(1)).mean()),
        "max_abs": float(np.abs(logits - reference).max()),
    }


def _chunks(arrays: Sequence[np.ndarray], batch: int = 32) -> Iterator[list[np.ndarray]]:
    for i in range(0, len(arrays[0]), batch):
        yield [a[i : i + batch] for a in arrays]


def hand_agreement(p: Prepared) -> dict[str, dict[str, float]]:
    """Each hand-configured runtime's agreement, one runtime loaded at a time."""
    import onnxruntime as ort
    import openvino as ov

    out = {}
    if p.onnx is not None:
        session = ort.InferenceSession(str(p.onnx), providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]
        got = [session.run(None, dict(zip(names, c, strict=True)))[0] for c in _chunks(p.test)]
        out[ORT] = agreement(np.concatenate(got), p.test_logits)
        del session
    for case, path in ((OV, p.onnx), (OV_INT8, p.int8)):
        if path is not None:
            compiled = ov.Core().compile_model(str(path), "CPU")
            got = [compiled(c)[0] for c in _chunks(p.test)]
            out[case] = agreement(np.concatenate(got), p.test_logits)
            del compiled
    return out


# --- jiasu's pick ----------------------------------------------------------------------


@dataclass
class Pick:
    name: str  # the case name in the table
    chosen: str
    seconds: float  # wall time of jiasu.optimize
    artifact: Path
    agreement: dict[str, float]
    verified: str  # what jiasu's own report says it verified
    predictor: Any = None  # only when the pick could not be saved: timed in-process
    notes: list[str] = field(default_factory=list)


def _examples(z: ZooModel, arrays: Sequence[np.ndarray]) -> Any:
    tensors = [torch.from_numpy(a) for a in arrays]
    if z.keyword:
        return dict(zip(z.names, tensors, strict=True))
    return tensors[0] if len(tensors) == 1 else tuple(tensors)


def _as_data(z: ZooModel, arrays: Sequence[np.ndarray]) -> Any:
    if z.keyword:
        return dict(zip(z.names, arrays, strict=True))
    return arrays[0] if len(arrays) == 1 else tuple(arrays)


def pick(p: Prepared, batch: int, *, with_data: bool, budget: float, measure_s: float) -> Pick:
    """`jiasu.optimize` for the cell, its pick saved, and its agreement on the test set."""
    import jiasu
    from jiasu.infer.report import quality_text

    z = p.z
    kwargs: dict[str, Any] = {
        "target": CELLS[batch], "batch_size": batch, "measure_s": measure_s,
    }  # fmt: skip
    if with_data:
        kwargs.update(data=_as_data(z, p.data), labels=p.labels, budget=budget)
    start = time.perf_counter()
    result = jiasu.optimize(z.module, _examples(z, z.make_inputs(2, 0)), **kwargs)
    seconds = time.perf_counter() - start
    case = PICK_DATA if with_data else PICK_EXACT
    artifact = p.folder / f"pick_{batch}_{'data' if with_data else 'exact'}"
    got = [np.asarray(result.predictor(*c)) for c in _chunks(p.test)]
    chosen = Pick(
        case, result.chosen.name, seconds, artifact,
        agreement(np.concatenate(got), p.test_logits), quality_text(result.chosen.verification),
    )  # fmt: skip
    try:
        result.save(artifact)
    except Exception as exc:  # a pick jiasu cannot write (then timed in this process)
        chosen.notes.append(f"not saved ({_first_line(exc)}); timed in the benchmark's process")
        chosen.predictor = result.predictor
    return chosen


# --- timing --------------------------------------------------------------------------


def time_cell(
    p: Prepared, batch: int, picks: Sequence[Pick], seconds: float, rounds: int
) -> dict[str, dict[str, Any]]:
    """Every row of one cell, each alone in its own process, rotated rounds of blocks."""
    from jiasu.infer.isolation import save_batch
    from jiasu.measure.isolated import Isolated, compare_isolated

    z = p.z
    inputs = save_batch(z.make_inputs(batch, 7), p.folder / f"inputs_{batch}.npz")
    cases: dict[str, Any] = {
        EAGER: Isolated("zoo:eager", {"model": z.name, "quick": QUICK, "inputs": inputs}, (HERE,)),
    }
    if p.onnx is not None:
        cases[ORT] = Isolated(
            "zoo:onnxruntime_defaults", {"path": str(p.onnx), "inputs": inputs}, (HERE,)
        )
        cases[OV] = Isolated(
            "zoo:openvino_defaults", {"path": str(p.onnx), "inputs": inputs}, (HERE,)
        )
    if p.int8 is not None:
        cases[OV_INT8] = Isolated(
            "zoo:openvino_defaults", {"path": str(p.int8), "inputs": inputs}, (HERE,)
        )
    for chosen in picks:
        if chosen.predictor is not None:
            cases[chosen.name] = functools.partial(chosen.predictor, *_saved(inputs))
        else:
            cases[chosen.name] = Isolated(
                "jiasu.infer.isolation:timed_predictor",
                {"directory": str(chosen.artifact), "inputs": inputs},
            )
    heavy = z.name in HEAVY and not QUICK
    comparison = compare_isolated(
        cases, baseline=EAGER, seconds=seconds, rounds=rounds,
        warmup=1 if heavy and batch > 1 else 3, items_per_call=batch,
    )  # fmt: skip
    rows = {}
    for name, result in comparison.results.items():
        m, ratio = result.measurement, result.speedup_summary
        rows[name] = {
            "median_s": m.median_s if m else None,
            "p10_s": m.summary.p10 if m else None,
            "p90_s": m.summary.p90 if m else None,
            "calls": m.summary.n if m else 0,
            "samples_per_s": m.items_per_s if m else None,
            "speedup": result.speedup,
            "speedup_p10": ratio.p10 if ratio else None,
            "speedup_p90": ratio.p90 if ratio else None,
            "error": result.error,
        }
    return rows


QUICK = False  # set from --quick; the worker factories get it passed explicitly


# --- the run ---------------------------------------------------------------------------


def prepare(name: str, args: argparse.Namespace, folder: Path) -> Prepared:
    z = BUILDERS[name](args.quick)
    small = name not in HEAVY or args.quick
    n_data = args.data_size or (1000 if small else 128)
    n_test = args.test_size or (1000 if small else 128)
    data, test = z.make_inputs(n_data, 2), z.make_inputs(n_test, 4)
    labels = eager_logits(z, data).argmax(1)
    p = Prepared(z, folder, data, labels, test, eager_logits(z, test))
    export_by_hand(p)
    quantize_by_hand(p, args.calibration)
    return p


def run_model(name: str, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"zoo_{name}_") as tmp:
        p = prepare(name, args, Path(tmp))
        print(f"{name}: export {p.seconds['export']:.1f} s, nncf {p.seconds['nncf int8']:.1f} s "
              f"{'; '.join(p.notes)}", flush=True)  # fmt: skip
        record: dict[str, Any] = {
            "prepare_s": dict(p.seconds), "notes": p.notes,
            "agreement": {EAGER: {"top1": 1.0, "max_abs": 0.0}, **hand_agreement(p)},
            "cells": {}, "picks": {},
            # how many classes eager fp32 predicts on the test set: 1 would make top-1
            # agreement meaningless (a random network may map every input to one class)
            "fp32_classes": len(np.unique(p.test_logits.argmax(1))),
            "test_size": len(p.test[0]), "data_size": len(p.data[0]),
        }  # fmt: skip
        for batch in args.batches:
            picks: list[Pick] = []
            if not args.no_pick:
                for with_data in (False, True):
                    chosen = pick(
                        p, batch, with_data=with_data, budget=args.budget,
                        measure_s=args.optimize_measure_s,
                    )  # fmt: skip
                    print(f"{name} batch {batch}: {chosen.name} → {chosen.chosen} in "
                          f"{chosen.seconds:.0f} s; top-1 agreement "
                          f"{chosen.agreement['top1']:.1%}", flush=True)  # fmt: skip
                    picks.append(chosen)
            rows = time_cell(p, batch, picks, args.measure_s, args.rounds)
            record["cells"][str(batch)] = rows
            record["picks"][str(batch)] = {
                c.name: {"chosen": c.chosen, "optimize_s": c.seconds, "notes": c.notes,
                         "agreement": c.agreement, "verified": c.verified}
                for c in picks
            }  # fmt: skip
            print(f"{name} batch {batch}: " + ", ".join(
                f"{k} {v['speedup']:.2f}×" for k, v in rows.items() if v["speedup"]
            ), flush=True)  # fmt: skip
        return record


# --- the tables --------------------------------------------------------------------------

TITLES = {
    "resnet50": "ResNet-50, 3×224×224",
    "vit": "ViT-B/16, 3×224×224",
    "bert": "BERT-base, sequence 128",
    "distilbert": "DistilBERT, sequence 128",
    "mlp": "tabular MLP, 30 features",
    "gru": "GRU classifier, 50 steps × 16 features",
}


def _ms(seconds: float | None) -> str:
    from jiasu.measure.benchmark import format_seconds

    return format_seconds(seconds) if seconds is not None else "—"


def _cell(row: dict[str, Any] | None, batch: int) -> str:
    if row is None:
        return "—"
    if row["median_s"] is None:
        return f"failed: {row['error']}"
    if batch == 1:
        figure = f"{_ms(row['median_s'])} [{_ms(row['p10_s'])}–{_ms(row['p90_s'])}]"
    else:
        figure = f"{row['samples_per_s']:,.0f}/s [{_ms(row['p10_s'])}–{_ms(row['p90_s'])} a call]"
    ratio = f"{row['speedup']:.2f}×"
    if row["speedup_p10"] is not None:
        ratio += f" [{row['speedup_p10']:.2f}–{row['speedup_p90']:.2f}]"
    return f"{figure} | {ratio}"


def _agree(a: dict[str, float] | None) -> str:
    return f"{a['top1']:.1%}, {a['max_abs']:.2g}" if a else "—"


def model_table(record: dict[str, Any], raw: dict[str, Any]) -> list[str]:
    batches = [int(b) for b in record["cells"]]
    head = "| row | precision |"
    rule = "|---|---|"
    for b in batches:
        what = "median [p10–p90]" if b == 1 else "samples/s [p10–p90 of a call]"
        head += f" batch {b}: {what} | × eager [per-round p10–p90] |"
        rule += "---:|---:|"
    head += " top-1 agreement, max abs diff (test set) |"
    rule += "---|"
    lines = [head, rule]
    for case in (EAGER, ORT, OV, OV_INT8):
        line = f"| {case} | {precision(raw, case)} |"
        for b in batches:
            line += f" {_cell(record['cells'][str(b)].get(case), b)} |"
        lines.append(line + f" {_agree(record['agreement'].get(case))} |")
    for case in (PICK_EXACT, PICK_DATA):
        chosen = [record["picks"][str(b)].get(case) for b in batches]
        if not any(chosen):
            continue
        names = " / ".join(f"b{b}: {c['chosen']}" if c else "—"
                           for b, c in zip(batches, chosen, strict=True))  # fmt: skip
        line = f"| {case} → {names} | |"
        for b in batches:
            line += f" {_cell(record['cells'][str(b)].get(case), b)} |"
        agrees = " / ".join(_agree(c["agreement"]) if c else "—" for c in chosen)
        lines.append(line + f" {agrees} |")
    return lines


def verdicts(name: str, record: dict[str, Any], raw: dict[str, Any]) -> list[str]:
    """Each cell's pick against the best hand figure of its precision class, and the
    issue's targets: met or missed, and by how much."""
    out = []
    budget = raw["budget"]
    exact = {c for c in (EAGER, ORT, OV) if precision(raw, c) == "fp32"}
    admitted = {c for c, a in record["agreement"].items() if a["top1"] >= 1 - budget}
    for b, rows in record["cells"].items():
        picks = record["picks"].get(b, {})
        for case, classes in ((PICK_EXACT, exact), (PICK_DATA, admitted)):
            row, info = rows.get(case), picks.get(case)
            if row is None or info is None or row["speedup"] is None:
                continue
            hands = {c: rows[c] for c in classes if c in rows and rows[c]["speedup"]}
            best = max(hands, key=lambda c: hands[c]["speedup"])
            ratio = row["speedup"] / hands[best]["speedup"]
            within = ratio >= 1.0 or (row["speedup_p90"] or 0) >= hands[best]["speedup"]
            line = (f"{name}, batch {b}, {case}: {info['chosen']} at {row['speedup']:.2f}× eager"
                    f" = {ratio:.2f}× the best hand row it may use ({best}, "
                    f"{hands[best]['speedup']:.2f}×): {'met' if within else 'MISSED'}")  # fmt: skip
            floor = TARGET_SPEEDUPS.get(name)
            if floor and case == PICK_DATA and b == "1":
                line += (f"; target ≥ {floor}× eager: "
                         + ("met" if row["speedup"] >= floor else
                            f"MISSED by {floor - row['speedup']:.2f}×"))  # fmt: skip
            seconds = info["optimize_s"]
            line += f"; jiasu.optimize {seconds:.0f} s" + (
                "" if seconds < OPTIMIZE_LIMIT_S else " (target < 300 s: MISSED)"
            )
            line += f"; agreement {info['agreement']['top1']:.1%} on the test set"
            out.append(f"- {line}")
    return out


def render(raw: dict[str, Any], args: argparse.Namespace) -> str:
    env = raw["environment"]
    features = [k for k, v in env.get("cpu_features", {}).items() if v] or ["none listed"]
    command = "nice .venv/bin/python benchmarks/zoo.py " + " ".join(raw["argv"])
    lines = [
        "# Model zoo: eager vs each runtime by hand vs jiasu's pick",
        "",
        "Command (same run for every number below):",
        "",
        "```",
        command.strip(),
        "```",
        "",
        f"CPU: {env['cpu_model']}, {env['logical_cpus']} logical CPUs; features: "
        f"{', '.join(features)}; torch {env['torch']}; "
        f"{raw['seconds'] / 60:.0f} min in all. Load average (1 min) "
        f"{raw['load_average']['start'][0]:.1f} at the start and "
        f"{raw['load_average']['end'][0]:.1f} at the end (above 2 on 2 cores: other "
        "processes shared the machine).",
        "",
        "Random weights from `transformers` configs (no downloads). Each row timed alone in "
        "its own process in rotated rounds of blocks; × eager is against the eager row of the "
        "same cell. *With data*: `jiasu.optimize(..., data, labels, budget="
        f"{raw['budget']})` where the labels are eager fp32's top-1 on held-out generated "
        "inputs — **the metric verified is agreement with fp32, not accuracy**. Agreement "
        "columns: every row on a further test set no candidate saw. OpenVINO's defaults "
        f"compute in {precision(raw, OV)} on this CPU{_ov_note(raw)}",
        "",
        "## Summary",
        "",
    ]
    for name, record in raw["models"].items():
        lines += verdicts(name, record, raw)
    for name, record in raw["models"].items():
        seconds = record["prepare_s"]
        lines += [
            "",
            f"## {TITLES.get(name, name)}{' (quick: tiny config)' if args.quick else ''}",
            "",
            f"By hand: `torch.onnx.export` {seconds.get('export', 0):.1f} s; `nncf.quantize` "
            f"{seconds.get('nncf int8', 0):.1f} s "
            f"({'transformer scheme' if name in TRANSFORMERS else 'default scheme'}, "
            f"{args.calibration} calibration samples). " + " ".join(record["notes"]),
            "",
            f"Data: {record['data_size']} generated inputs with eager fp32's labels for "
            f"`jiasu.optimize`; test set {record['test_size']} further inputs, on which eager "
            f"fp32 predicts {record['fp32_classes']} distinct classes (agreement means "
            "little where it predicts one or two).",
            "",
            *model_table(record, raw),
        ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    global QUICK
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--models", default=",".join(BUILDERS),
                        help=f"comma-separated, from {', '.join(BUILDERS)}")  # fmt: skip
    parser.add_argument("--batches", default="1,32", help="comma-separated: 1 and/or 32")
    parser.add_argument("--quick", action="store_true", help="tiny configs: a smoke run")
    parser.add_argument(
        "--measure-s",
        type=float,
        default=None,
        help="timed seconds per cell, all rows together (default 12; quick 1)",
    )
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 5; quick 2)")
    parser.add_argument(
        "--optimize-measure-s",
        type=float,
        default=None,
        help="jiasu.optimize's measure_s (default 3; quick 0.3)",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=0.01,
        help="accuracy (here: agreement) the pick may lose, as a fraction",
    )
    parser.add_argument(
        "--calibration",
        type=int,
        default=128,
        help="samples of the user's data NNCF calibrates on (by hand)",
    )
    parser.add_argument("--data-size", type=int, default=None)
    parser.add_argument("--test-size", type=int, default=None)
    parser.add_argument("--no-pick", action="store_true", help="hand-configured rows only")
    parser.add_argument("--markdown", type=Path, default=None, help="write the tables here")
    parser.add_argument("--json", type=Path, default=None, help="write raw results here")
    args = parser.parse_args(argv)
    QUICK = args.quick
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in args.models if m not in BUILDERS]
    if unknown:
        parser.error(f"unknown model {unknown[0]!r}; use some of {', '.join(BUILDERS)}")
    args.batches = [int(b) for b in args.batches.split(",")]
    if any(b not in CELLS for b in args.batches):
        parser.error("--batches takes 1 and/or 32")
    args.measure_s = args.measure_s or (1.0 if args.quick else 12.0)
    args.rounds = args.rounds or (2 if args.quick else 5)
    args.optimize_measure_s = args.optimize_measure_s or (0.3 if args.quick else 3.0)
    if args.quick:
        args.calibration = min(args.calibration, 16)
        args.data_size = args.data_size or 64
        args.test_size = args.test_size or 64

    from jiasu.core.atomic import atomic_write_text
    from jiasu.measure.environment import capture_environment

    load_before = os.getloadavg()
    start = time.perf_counter()
    raw: dict[str, Any] = {
        "argv": list(argv if argv is not None else sys.argv[1:]),
        "environment": capture_environment("cpu"), "models": {},
    }  # fmt: skip
    raw["budget"] = args.budget
    raw[OV_DEFAULT_PRECISION] = openvino_default_precision()
    for name in args.models:  # the files are rewritten after each model: a long run
        raw["models"][name] = run_model(name, args)  # leaves what it has measured so far
        raw["seconds"] = time.perf_counter() - start
        raw["load_average"] = {"start": load_before, "end": os.getloadavg()}
        text = render(raw, args)
        if args.markdown:
            atomic_write_text(args.markdown, text)
        if args.json:
            atomic_write_text(args.json, json.dumps(raw, indent=2, default=str) + "\n")
    print(text)
    return raw


if __name__ == "__main__":
    main()
