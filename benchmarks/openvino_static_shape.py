"""OpenVINO at the run's batch: a static input shape against the dynamic one, in one run.

jiasu's OpenVINO candidates that run the whole batch in one request compile the run's batch
as a static shape (`jiasu.infer.backends.openvino.runner_for`). This measures what that
buys on a zoo model, for OpenVINO's default precision and NNCF int8: the exported model
compiled (LATENCY hint) with its shapes as exported (batch and sequence dynamic), with
only the sequence fixed, and fully static at the batch; rounds interleave the variants
so a busy machine slows them alike. Prints each variant's median, p10-p90 and its ratio
to the dynamic one of the same precision.

    .venv/bin/python benchmarks/openvino_static_shape.py --model bert --batch 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import zoo  # the folder is on sys.path, not a package


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="bert", choices=sorted(zoo.BUILDERS))
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--calls", type=int, default=5, help="calls per variant per round")
    args = parser.parse_args()
    import openvino as ov

    prep = argparse.Namespace(quick=False, data_size=64, test_size=8, calibration=64)
    with tempfile.TemporaryDirectory() as tmp:
        p = zoo.prepare(args.model, prep, Path(tmp))
        x = p.z.make_inputs(args.batch, 7)
        core = ov.Core()
        variants = {}
        for kind, path in (("default", p.onnx), ("int8", p.int8)):
            shapes = {
                "dynamic": None,
                "sequence fixed": {i: [-1, *a.shape[1:]] for i, a in enumerate(x)},
                "static": {i: list(a.shape) for i, a in enumerate(x)},
            }
            for how, shape in shapes.items():
                model = core.read_model(str(path))
                if shape is not None:
                    model.reshape(shape)
                compiled = core.compile_model(model, "CPU", {"PERFORMANCE_HINT": "LATENCY"})
                variants[(kind, how)] = compiled.create_infer_request()
        times: dict[tuple[str, str], list[float]] = {k: [] for k in variants}
        for request in variants.values():
            for _ in range(3):
                request.infer(list(x))
        for _ in range(args.rounds):
            for key, request in variants.items():
                for _ in range(args.calls):
                    start = time.perf_counter()
                    request.infer(list(x))
                    times[key].append(time.perf_counter() - start)
    print(f"{args.model} batch {args.batch}: OpenVINO {ov.__version__}, LATENCY hint, "
          f"{args.rounds} rounds x {args.calls} calls")  # fmt: skip
    print("| precision | shape | median ms | p10-p90 ms | x dynamic |\n|---|---|---|---|---|")
    for (kind, how), t in times.items():
        ms = np.array(t) * 1000
        base = statistics.median(times[(kind, "dynamic")]) * 1000
        median = float(np.median(ms))
        print(f"| {kind} | {how} | {median:.2f} | {np.percentile(ms, 10):.2f}-"
              f"{np.percentile(ms, 90):.2f} | {base / median:.2f}x |")  # fmt: skip


if __name__ == "__main__":
    main()
