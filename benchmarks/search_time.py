"""How long `jiasu.optimize` searches (issue 12: under 5 minutes), and where the time goes.

For one model of the zoo (`benchmarks/zoo.py`'s builders: real architectures from
`transformers` configs with random weights) at one batch size, run the search as the zoo
benchmark's picks do (``target`` from its cells, ``measure_s`` 3) without data and with
data (the zoo's data inputs, eager fp32's classes as labels, accuracy budget 0.05), and
print its wall time, its phases (the report's ``phase_seconds``) and each candidate's
verdict and speedup. Only the search is run: no hand-configured rows, no timing cells.

    .venv/bin/python benchmarks/search_time.py --model vit --batch 32 --json runs/search_vit32.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import zoo  # noqa: E402  (the folder is on sys.path, not a package)

LIMIT_S = 300.0  # issue 12: a search under 5 minutes


def search(name: str, batch: int, *, with_data: bool, data_size: int) -> dict[str, Any]:
    import jiasu

    z = zoo.BUILDERS[name](False)
    kwargs: dict[str, Any] = {"target": zoo.CELLS[batch], "batch_size": batch, "measure_s": 3.0}
    if with_data:
        data = z.make_inputs(data_size, 2)
        labels = zoo.eager_logits(z, data).argmax(1)
        kwargs.update(data=zoo._as_data(z, data), labels=labels, budget=0.05)
    started = time.perf_counter()
    result = jiasu.optimize(z.module, zoo._examples(z, z.make_inputs(2, 0)), **kwargs)
    seconds = time.perf_counter() - started
    report = result.report.to_dict()
    return {
        "model": name,
        "batch": batch,
        "with_data": with_data,
        "seconds": seconds,
        "chosen": result.chosen.name,
        "phase_seconds": report.get("phase_seconds"),
        "candidates": [
            {k: c.get(k) for k in ("name", "verdict", "speedup", "timing", "reason")}
            for c in report.get("candidates", [])
        ],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="vit", choices=sorted(zoo.BUILDERS))
    parser.add_argument("--batch", type=int, default=32, choices=sorted(zoo.CELLS))
    parser.add_argument("--data-size", type=int, default=128, help="inputs given as data")
    parser.add_argument("--only", choices=("data", "no-data"), default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    runs = []
    for with_data in (False, True):
        if args.only and args.only != ("data" if with_data else "no-data"):
            continue
        run = search(args.model, args.batch, with_data=with_data, data_size=args.data_size)
        runs.append(run)
        verdict = "met" if run["seconds"] < LIMIT_S else "MISSED"
        kind = "with" if with_data else "without"
        print(f"{args.model} batch {args.batch} {kind} data: {run['seconds']:.0f} s → "
              f"{run['chosen']} (< {LIMIT_S:.0f} s: {verdict})")  # fmt: skip
        for phase, s in (run["phase_seconds"] or {}).items():
            print(f"  {phase}: {s:.1f} s")
        for c in run["candidates"]:
            speed = f"{c['speedup']:.2f}×" if c["speedup"] else "—"
            print(f"  {c['name']}: {c['verdict']} {speed} ({c['timing']})")
        sys.stdout.flush()
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(runs, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
