"""Does an OpenVINO candidate give the model's answers at every batch size, in every process?

jiasu verifies a candidate at the search's batch size; a server later runs whatever batch
its clients make. This checks one OpenVINO candidate of a zoo model (`benchmarks/zoo.py`'s
builders: random weights from `transformers` configs) at each batch size from 1 to
`--max-batch`, in `--processes` fresh processes (a compiled model is made once a process,
as a server makes it), against eager fp32 on the same rows. It prints each (process,
batch) whose answers are off by more than `--tolerance`.

    .venv/bin/python benchmarks/openvino_batch_check.py --model vit --candidate openvino-fp32
    .venv/bin/python benchmarks/openvino_batch_check.py --model resnet50 \
        --candidate openvino-int8 --calibration 64 --reference self --tolerance 0.05
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def child(folder: Path, batches: list[int], at_once: bool) -> None:
    """Load the candidate's IR as `jiasu.load` does, call it at each batch size and print
    the max abs error against eager fp32 at each."""
    import openvino as ov

    from jiasu.core.signature import InputSignature
    from jiasu.infer.backends import openvino
    from jiasu.infer.backends.openvino import runner_for

    openvino.FIRST_CALL_ALONE = not at_once

    spec = json.loads((folder / "spec.json").read_text())
    signature = InputSignature.from_dict(spec["signature"])
    with np.load(folder / "inputs.npz") as saved:
        inputs = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    reference = np.load(folder / "reference.npy")
    run = runner_for(ov.Core().read_model(str(folder / "model.xml")), spec["settings"], signature)
    errors: dict[int, float] = {}  # the worst call of each size (a size may repeat)
    for b in batches:
        out = run(*(np.ascontiguousarray(a[:b]) for a in inputs))
        errors[b] = max(errors.get(b, 0.0), float(np.abs(out - reference[:b]).max()))
    print("RESULT " + json.dumps(errors), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="vit")
    parser.add_argument("--candidate", default="openvino-fp32")
    parser.add_argument("--target", choices=("latency", "throughput"), default="throughput")
    parser.add_argument("--batch", type=int, default=32, help="the search's batch size")
    parser.add_argument("--batches", default="1,2,3,4,8,12,16,24,31,32", help="batch sizes to call")
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--tolerance", type=float, default=1e-3)
    parser.add_argument(
        "--reference", choices=("eager", "self"), default="eager",
        help="eager fp32, or (for int8/bf16) the same IR under LATENCY, one row a call",
    )  # fmt: skip
    parser.add_argument(
        "--calibration", type=int, default=0,
        help="samples to calibrate int8 on (needed for openvino-int8; other inputs than checked)",
    )  # fmt: skip
    parser.add_argument(
        "--first-call-at-once", action="store_true",
        help="run a new shape's parts at once, as jiasu did before (does OpenVINO still need it?)",
    )  # fmt: skip
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    if args.child is not None:
        child(args.child, batches, args.first_call_at_once)
        return 0

    import zoo
    from jiasu.infer.api import _signature, _source

    z = zoo.BUILDERS[args.model](False)
    signature = _signature(zoo._examples(z, z.make_inputs(2, 0)), None)
    source = _source(z.module, signature, None)
    inputs = z.make_inputs(max(batches), 4)
    folder = Path(tempfile.mkdtemp(prefix="ov_batch_check_"))
    try:
        return check(args, z, source, signature, inputs, folder, batches)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def self_reference(folder: Path, settings: dict, signature: Any, inputs: Any) -> np.ndarray:
    """The candidate's own answers, one row a call on one request under LATENCY: what an
    approximate candidate (int8, bf16) should give at any batch size, up to rounding."""
    import openvino as ov

    from jiasu.infer.backends.openvino import runner_for

    latency = {**settings, "hint": "LATENCY", "split_batch": False, "static_batch": None}
    run = runner_for(ov.Core().read_model(str(folder / "model.xml")), latency, signature)
    rows = len(inputs[0])
    return np.concatenate([run(*(np.ascontiguousarray(a[i : i + 1]) for a in inputs))
                           for i in range(rows)])  # fmt: skip


def check(
    args: argparse.Namespace, z: Any, source: Any, signature: Any, inputs: Any, folder: Path,
    batches: list[int],
) -> int:  # fmt: skip
    import torch

    import zoo
    from jiasu.infer.backends import BACKENDS, BuildContext

    reference = zoo.eager_logits(z, inputs)
    calibration = tuple(z.make_inputs(args.calibration, 11)) if args.calibration else None
    threads = torch.get_num_threads()
    ctx = BuildContext(source, folder, threads, args.batch, args.target, calibration)
    backend = BACKENDS.get("openvino")()
    candidates = {c.name: c for c in backend.candidates(ctx)}
    if args.candidate not in candidates:
        raise SystemExit(f"no candidate {args.candidate!r} here; one of {', '.join(candidates)}"
                         " (openvino-int8 needs --calibration N)")  # fmt: skip
    candidate = candidates[args.candidate]
    settings = dict(candidate.settings)
    backend.build(candidate, ctx).save(folder)  # model.xml + model.bin, as an artifact holds
    if args.reference == "self":
        reference = self_reference(folder, settings, signature, inputs)
    spec: dict[str, Any] = {"settings": settings, "signature": signature.to_dict()}
    (folder / "spec.json").write_text(json.dumps(spec))
    np.savez(folder / "inputs.npz", *inputs)
    np.save(folder / "reference.npy", reference)
    print(f"{args.model} {args.candidate} {settings}; batches {args.batches}, "
          f"{args.processes} processes, tolerance {args.tolerance:g}", flush=True)  # fmt: skip
    wrong = 0
    for p in range(args.processes):
        done = subprocess.run(
            [sys.executable, __file__, "--child", str(folder), "--batches", args.batches,
             *(["--first-call-at-once"] if args.first_call_at_once else [])],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            print(f"process {p}: failed: {done.stderr[-500:]}")
            continue
        errors = {int(k): v for k, v in json.loads(line[7:]).items()}
        bad = {b: e for b, e in errors.items() if e > args.tolerance}
        wrong += bool(bad)
        worst = max(errors.values())
        print(f"process {p}: {len(bad)} of {len(errors)} batch sizes off "
              f"{sorted(bad)} (max abs {worst:.3g})", flush=True)  # fmt: skip
    print(f"{wrong} of {args.processes} processes gave wrong answers at some batch size")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
