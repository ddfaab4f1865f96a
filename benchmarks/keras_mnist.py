"""Plain Keras ``fit`` against jiasu (inside Keras and via `jiasu.fit`), same run, real MNIST.

Runs examples/founding_keras.py's three ways `--repeats` times, interleaved (keras,
keras+jiasu, jiasu.fit, keras, ...) so that load on the machine hits all alike, and prints
medians with the spread and the speed-up against plain Keras.

    python benchmarks/keras_mnist.py --repeats 3 --markdown benchmarks/results_keras.md
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
from pathlib import Path
from types import ModuleType

from jiasu.data import load_mnist
from jiasu.measure import capture_environment

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "founding_keras.py"


def _example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("founding_keras", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None, help="default: every CPU")
    parser.add_argument("--markdown", type=Path, default=None, help="append the table here")
    args = parser.parse_args(argv)
    example = _example()
    settings = example.Settings(
        epochs=args.epochs, batch_size=args.batch_size, threads=args.threads
    )
    splits = load_mnist(args.data_dir)
    runs: dict[str, list[tuple[float, float]]] = {}
    for repeat in range(args.repeats):
        for row in example.run(splits, settings, verbose=False):
            runs.setdefault(row.name, []).append((row.train_s, row.test_accuracy))
        print(f"repeat {repeat + 1}/{args.repeats} done", file=sys.stderr)
    base_s = statistics.median(s for s, _ in runs["keras"])
    lines = [
        "| run | train s (median) | min–max s | speed-up vs Keras | test accuracy (median) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, values in runs.items():
        seconds = [s for s, _ in values]
        accuracy = statistics.median(a for _, a in values)
        median_s = statistics.median(seconds)
        lines.append(
            f"| {name} | {median_s:.1f} | {min(seconds):.1f}–{max(seconds):.1f} | "
            f"{base_s / median_s:.2f}× | {accuracy:.2%} |"
        )
    env = capture_environment()
    header = (
        f"\n### {args.repeats} repeats, {args.epochs} epochs, batch {args.batch_size}, "
        f"threads {args.threads or 'all'} (`python benchmarks/keras_mnist.py --repeats "
        f"{args.repeats}{f' --threads {args.threads}' if args.threads else ''}`)\n\n"
        f"{env['timestamp']}; {env['cpu_model']}, {env['usable_cpus']} usable CPUs; "
        f"torch {env['torch']}, Keras {example.keras.__version__}.\n\n"
    )
    table = "\n".join(lines) + "\n"
    print(header + table)
    if args.markdown is not None:
        with args.markdown.open("a", encoding="utf-8") as handle:
            handle.write(header + table)


if __name__ == "__main__":
    main()
