"""Data-parallel scaling on each engine: 1 and 2 workers, against one plain process.

For every engine (local torch.distributed, Ray Train, Spark TorchDistributor) and every
worker count, one epoch of the small CNN on MNIST, `--repeats` times. Reported: the
training loop's samples/s (all workers together and per worker), the start-up
overhead (driver wall clock minus the loop: engine start, worker start, data loading)
and the final validation accuracy. The baseline is `jiasu.fit` in this process with
the same threads per worker, measured in the same run.

    python benchmarks/distributed.py --samples 20000 --engines local,ray,spark
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Row:
    engine: str
    workers: int
    total_s: list[float]
    loop_s: list[float]
    samples: int
    val_accuracy: float

    @property
    def samples_per_s(self) -> float:
        return self.samples / statistics.median(self.loop_s)


def _spread(values: list[float]) -> str:
    median = statistics.median(values)
    if len(values) < 2:
        return f"{median:.1f}"
    return f"{median:.1f} (±{(max(values) - min(values)) / 2:.1f})"


def baseline(samples: int, val: int, data_dir: str, threads: int, repeats: int) -> Row:
    from jiasu.data import load_mnist
    from jiasu.hardware.threads import threads as threads_ctx
    from jiasu.models import create_model
    from jiasu.train import fit

    splits = load_mnist(data_dir, download=False)
    train, test = splits.train.take(samples), splits.test.take(val)
    loops, totals, accuracy = [], [], 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        with threads_ctx(threads):
            history = fit(create_model("cnn"), train, epochs=1, batch_size=32,
                          validation_data=test, quiet=True)  # fmt: skip
        totals.append(time.perf_counter() - start)
        loops.append(history.train_seconds + history.last.val_seconds)
        accuracy = history.last.val_accuracy or 0.0
    return Row("fit (1 process)", 1, totals, loops, samples, accuracy)


def distributed(engine: str, workers: int, args: argparse.Namespace) -> Row:
    from jiasu.engines import MnistSource, TrainJob, train_distributed
    from jiasu.models import ModelSpec
    from jiasu.train import TrainSettings

    source = MnistSource(args.data_dir, train_samples=args.samples, val_samples=args.val)
    job = TrainJob(ModelSpec("cnn"), source, TrainSettings(epochs=1, batch_size=32))
    loops, totals, accuracy = [], [], 0.0
    for _ in range(args.repeats):
        result = train_distributed(
            job, engine=engine, workers=workers, threads_per_worker=args.threads
        )
        totals.append(result.total_seconds)
        loops.append(result.loop_seconds)
        accuracy = result.history.last.val_accuracy or 0.0
    return Row(engine, workers, totals, loops, args.samples, accuracy)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--val", type=int, default=5000)
    parser.add_argument("--engines", default="local,ray,spark")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--threads", type=int, default=1, help="threads per worker")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data" / "mnist"))
    args = parser.parse_args()

    rows = [baseline(args.samples, args.val, args.data_dir, args.threads, args.repeats)]
    for engine in args.engines.split(","):
        for workers in (int(w) for w in args.workers.split(",")):
            rows.append(distributed(engine, workers, args))
            print(f"done: {engine} × {workers}", file=sys.stderr, flush=True)

    base = rows[0].samples_per_s
    print(f"\n`python benchmarks/distributed.py {' '.join(sys.argv[1:])}`: one epoch of "
          f"{args.samples} MNIST images, batch 32 per worker, {args.threads} thread(s) per "
          f"worker, medians of {args.repeats} run(s)\n")  # fmt: skip
    print("| engine | workers | loop samples/s | per worker | vs fit | loop s | "
          "start-up overhead s | total s | val accuracy |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        overhead = [t - loop for t, loop in zip(r.total_s, r.loop_s, strict=True)]
        print(
            f"| {r.engine} | {r.workers} | {r.samples_per_s:,.0f} | "
            f"{r.samples_per_s / r.workers:,.0f} | {r.samples_per_s / base:.2f}× | "
            f"{_spread(r.loop_s)} | {_spread(overhead)} | {_spread(r.total_s)} | "
            f"{r.val_accuracy:.4f} |"
        )


if __name__ == "__main__":
    main()
