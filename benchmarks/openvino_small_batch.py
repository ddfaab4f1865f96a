"""A throughput OpenVINO artifact at a batch smaller than its streams: one stream against
the LATENCY-compiled copy that `jiasu.load` now runs such batches on.

Under the THROUGHPUT hint OpenVINO makes one stream per core and jiasu splits each batch
over them; a batch of 1 then runs on one stream (one core). This times, on an artifact's
own model, that path (`request_runner(..., split_batch=True)`) against a copy compiled
under LATENCY (every thread on one request), interleaved in rounds, and checks their
answers agree.

    .venv/bin/python benchmarks/openvino_small_batch.py runs/serve_load/artifacts/resnet50
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("artifact", type=Path, help="a jiasu artifact folder (openvino backend)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--calls", type=int, default=5, help="calls per path per round")
    args = parser.parse_args()
    import openvino as ov

    from jiasu.core.signature import InputSignature
    from jiasu.infer.backends import openvino as backend

    description = json.loads((args.artifact / "artifact.json").read_text())
    settings = description["candidate"]["settings"]
    if settings.get("hint") != "THROUGHPUT":
        raise SystemExit(f"{args.artifact} was compiled for {settings.get('hint')}, not throughput")
    signature = InputSignature.from_dict(description["signature"])
    model = ov.Core().read_model(str(args.artifact / "model.xml"))
    paths = {
        "one stream (THROUGHPUT, split)": backend.request_runner(
            backend.compile_model(model, settings), split_batch=True
        ),
        "latency copy": backend.request_runner(
            backend.compile_model(model, {**settings, "hint": "LATENCY"})
        ),
    }
    x = signature.generate(args.batch, seed=1)
    for run in paths.values():
        for _ in range(3):
            run(*x)
    times: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(args.rounds):
        for name, run in paths.items():
            for _ in range(args.calls):
                start = time.perf_counter()
                run(*x)
                times[name].append((time.perf_counter() - start) * 1000)
    base = float(np.median(times["one stream (THROUGHPUT, split)"]))
    print(f"{args.artifact} at batch {args.batch}: OpenVINO {ov.__version__}, "
          f"{args.rounds} rounds x {args.calls} calls")  # fmt: skip
    print("| path | median ms | p10-p90 ms | x one stream |\n|---|---:|---:|---:|")
    for name, ms in times.items():
        median = float(np.median(ms))
        print(f"| {name} | {median:.2f} | {np.percentile(ms, 10):.2f}-"
              f"{np.percentile(ms, 90):.2f} | {base / median:.2f}x |")  # fmt: skip
    outputs = [run(*x) for run in paths.values()]
    gap = float(np.abs(outputs[0] - outputs[1]).max())
    print(f"largest |difference| between the paths' answers: {gap:.3g}")


if __name__ == "__main__":
    main()
