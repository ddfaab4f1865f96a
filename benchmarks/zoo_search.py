"""How long `jiasu.optimize` takes on a zoo model, and what it picks, with default settings.

    python benchmarks/zoo_search.py --model resnet50            # no data: exact candidates
    python benchmarks/zoo_search.py --model bert --with-data    # 256 rows, fp32's labels

With data, the labels are the fp32 model's own predictions on held-out generated inputs,
so the verified metric is agreement with fp32 (budget `--budget`, default 5 points, as in
benchmarks/zoo.py). Prints the search time and every candidate's verdict and × eager.
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch

import jiasu
import zoo_models  # type: ignore[import-not-found]

MODELS = {
    name: getattr(zoo_models, name)
    for name in ("resnet50", "vit", "bert", "distilbert", "mlp", "gru")
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="resnet50")
    parser.add_argument("--with-data", action="store_true")
    parser.add_argument("--rows", type=int, default=256)
    parser.add_argument("--budget", type=float, default=0.05)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    zoo = MODELS[args.model]()

    def shaped(arrays: tuple[object, ...]) -> object:  # keyword models take a dict
        return dict(zip(zoo.names, arrays, strict=True)) if zoo.keyword else arrays

    examples = shaped(zoo.make_inputs(2, 0))
    kwargs: dict[str, object] = {}
    if args.with_data:
        rows = zoo.make_inputs(args.rows, 1)
        data = shaped(rows)
        tensors = {n: torch.from_numpy(a) for n, a in zip(zoo.names, rows, strict=True)}
        with torch.no_grad():
            out = zoo.module(**tensors) if zoo.keyword else zoo.module(*tensors.values())
        logits = out.logits if hasattr(out, "logits") else out
        kwargs = {"data": data, "labels": logits.argmax(1).numpy(), "budget": args.budget}
    start = time.perf_counter()
    result = jiasu.optimize(zoo.module, examples, **kwargs)  # type: ignore[arg-type]
    took = time.perf_counter() - start
    print(
        f"{args.model}: search {took:.0f} s; chosen {result.chosen.name} at {result.speedup:.2f}×"
    )
    phases = result.report.phase_s
    print("  where the time went: " + ", ".join(f"{k} {v:.0f} s" for k, v in phases.items()))
    for c in result.report.candidates:
        ratio = "-" if c.speedup is None else f"{c.speedup:.2f}×"
        print(f"  {c.name:34} {c.verdict:9} {ratio:>7}  {c.reason[:90]}")


if __name__ == "__main__":
    main()
