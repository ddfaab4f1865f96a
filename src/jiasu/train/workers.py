"""How many DataLoader worker processes decode a streamed dataset: chosen by measuring.

A dataset decoded from files as it trains (a folder of photos too large for memory) can
be decoded in the training process (0 workers) or by k worker processes beside it. More
workers are not always faster: each is a process that competes for the CPUs with the
training and with the others (on a busy 2-CPU machine, 0 workers decoded small PNGs
fastest). So before training, `choose_workers` times a few batches of decoding at 0, 1,
2, 4, … workers up to the usable CPUs, within `BUDGET_S` seconds in all, and keeps the
fastest. Data held in memory needs no workers and is not measured.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import multiprocessing
import random
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from jiasu.core.errors import ConfigError, JiasuError, one_line
from jiasu.hardware.threads import default_threads, max_threads
from jiasu.train.loaders import dataset_batches

BUDGET_S = 3.0  # seconds of measuring in all (each count finishes its first timed round)
ROUNDS = 5  # timed rounds per worker count at most; its rate is the median round's
MIN_GAIN = 1.1  # more workers are kept only when at least 10% faster than fewer
PREFETCH = 2  # batches each worker prepares ahead (torch's default prefetch_factor)

# (dataset, batch size, workers, indices of the samples to decode, seconds allowed)
# -> samples decoded per second
RateFn = Callable[[Dataset[Any], int, int, Sequence[int], float], float]


@dataclasses.dataclass(frozen=True)
class WorkerChoice:
    """The worker count kept, the decoding rate measured at each count, and why."""

    num_workers: int
    samples_per_s: dict[int, float]  # by worker count, in the order measured
    seconds: float  # wall-clock seconds the measuring took (before training; not timed)
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """For `History.loader` and its JSON (worker counts as strings)."""
        return {
            "num_workers": self.num_workers,
            "samples_per_s": {str(k): round(v, 1) for k, v in self.samples_per_s.items()},
            "seconds": round(self.seconds, 3),
            "reason": self.reason,
        }


def worker_counts(cpus: int) -> list[int]:
    """The counts measured: 0, 1, 2, 4, … doubling below `cpus`, then `cpus`."""
    counts, k = [0], 1
    while k < cpus:
        counts.append(k)
        k *= 2
    return [*counts, cpus] if cpus >= 1 else counts


def choose_workers(
    dataset: Dataset[Any],
    batch_size: int,
    *,
    epochs: int = 1,
    budget_s: float = BUDGET_S,
    cpus: int | None = None,
    rate: RateFn | None = None,
    seed: int = 0,
) -> WorkerChoice:
    """Measure decoding `dataset` at each of `worker_counts(cpus)` and keep the fastest.

    Counts are timed in increasing order on different random samples; climbing stops
    once a count is not faster than the best so far, or when `budget_s` is spent (or
    would be, at the fastest rate measured, before the next count's first round; 0 and
    1 worker are always timed, so very slow decoding can take longer than the budget). A
    count is kept over a smaller one only when at least `MIN_GAIN` times as fast. When
    this process decodes the whole run (`epochs` passes) in less time than the budget,
    no workers are measured: they could save less than measuring them costs. `rate`
    (default `decoding_rate`) times one count; tests pass their own. A jiasu error
    while decoding (a damaged file) is raised; workers that cannot start end the climb.
    """
    start = time.perf_counter()
    if multiprocessing.current_process().daemon:
        return WorkerChoice(0, {}, 0.0, "a daemon process cannot start worker processes")
    timer = rate or decoding_rate
    n = len(dataset)  # type: ignore[arg-type]  # a map-style Dataset has a length
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    counts = worker_counts(cpus if cpus is not None else default_threads())
    rates: dict[int, float] = {}
    best, used = 0, 0
    reason = f"fastest of {len(counts)} counts measured"
    for position, workers in enumerate(counts):
        left = budget_s - (time.perf_counter() - start)
        if workers > 1 and (untimed_batches(workers) + workers) * batch_size > left * max(
            rates.values()
        ):
            reason = (
                f"fastest of the {len(rates)} counts measured within {budget_s:g} s (at the "
                f"rates measured, {_workers(workers)} would not finish a timed round in time)"
            )
            break
        needed = batches_to_time(workers) * batch_size
        indices = [order[(used + i) % n] for i in range(needed)]  # different samples
        used += needed
        try:
            rates[workers] = timer(dataset, batch_size, workers, indices,
                                   max(left, 0.0) / (len(counts) - position))  # fmt: skip
        except JiasuError:
            raise
        except Exception as exc:  # e.g. a dataset that cannot be sent to worker processes
            reason = f"{_workers(workers)} could not decode ({one_line(exc, 160)})"
            break
        if workers == 0:
            run_s = epochs * n / rates[0]
            if run_s < budget_s:
                reason = (
                    f"this process decodes the whole run in about {run_s:.2g} s, less than "
                    f"measuring workers would take ({budget_s:g} s)"
                )
                break
        elif rates[workers] >= MIN_GAIN * rates[best]:
            best = workers
        elif rates[workers] <= rates[best]:
            reason = f"{_workers(workers)} decoded no faster than {best}"
            break
    return WorkerChoice(best, rates, time.perf_counter() - start, reason)


def _workers(k: int) -> str:
    return "1 worker" if k == 1 else f"{k} workers"


def batches_to_time(workers: int) -> int:
    """Batches one measurement decodes: the untimed first ones (`untimed_batches`), then
    `ROUNDS` rounds of one batch per worker (one batch per round in this process)."""
    return untimed_batches(workers) + ROUNDS * max(workers, 1)


def untimed_batches(workers: int) -> int:
    """Batches decoded before timing starts: in this process the first (its first
    decoding pays one-time costs, such as importing the image plugins); with k workers,
    the ``PREFETCH * k`` they start with, which come in a burst, and one more."""
    return PREFETCH * workers + 1


def decoding_rate(
    dataset: Dataset[Any], batch_size: int, workers: int, indices: Sequence[int], seconds: float
) -> float:
    """Samples per second that `workers` processes (0: this one) decode `dataset` at.

    The batches of `indices` go through the loader training uses. The first
    `untimed_batches` are not timed; after them, each round of k batches (one batch in
    this process) is timed, and the rate is the median round's. Timing stops after
    `ROUNDS` rounds, or after the first round once `seconds` have passed. The workers
    end before this returns.
    """
    per_round = max(workers, 1)
    untimed = untimed_batches(workers)
    batches = dataset_batches(Subset(dataset, list(indices)), batch_size, shuffle=False,
                              generator=torch.Generator(), num_workers=workers)  # fmt: skip
    marks: list[float] = []  # when each timed round began and ended
    arrived = 0
    stream = iter(batches)
    try:
        started = time.perf_counter()
        for _ in stream:
            arrived += 1
            now = time.perf_counter()
            if arrived >= untimed and (arrived - untimed) % per_round == 0:
                marks.append(now)
            rounds = len(marks) - 1
            if rounds >= ROUNDS or (rounds >= 1 and now - started > seconds):
                break
    finally:
        stream.close()  # type: ignore[attr-defined]  # a generator
        batches.close()
    durations = [b - a for a, b in itertools.pairwise(marks)]
    if not durations:
        raise ValueError(f"{len(indices)} samples are too few to time {workers} workers")
    return per_round * batch_size / max(statistics.median(durations), 1e-9)


def check_workers(num_workers: object) -> int | None:
    """`num_workers` when None or a whole number from 0 to `max_threads()`; else
    `ConfigError`."""
    top = max_threads()
    if num_workers is None:
        return None
    if (
        isinstance(num_workers, bool)
        or not isinstance(num_workers, int)
        or not (0 <= num_workers <= top)
    ):
        raise ConfigError(
            f"num_workers {num_workers!r:.40} is out of range; use a whole number from 0 "
            f"(decode in the training process) to {top}, or None to choose by measuring"
        )
    return num_workers


def loader_workers(
    train: Any, batch_size: int, epochs: int, num_workers: int | None, seed: int = 0
) -> tuple[int, dict[str, Any] | None]:
    """Worker processes for streaming `train`, and the report for `History.loader`.

    Data in memory (`Examples`) needs none (None report); a user's `DataLoader` keeps its
    own, so `num_workers` with one is a `ConfigError`; a `Dataset` gets `num_workers` as
    given, else what `choose_workers` measured (leaving every random state as it was, so
    the run is the one a fixed count would give).
    """
    from jiasu.data.examples import Examples

    num_workers = check_workers(num_workers)
    if isinstance(train, DataLoader):
        if num_workers is not None:
            raise ConfigError(
                "the data is a DataLoader, which has its own num_workers; set it there and "
                "drop fit's num_workers"
            )
        return 0, None
    if isinstance(train, Examples):
        return 0, None
    if num_workers is not None:
        return num_workers, {"num_workers": num_workers, "reason": "given"}
    with kept_random_state():
        choice = choose_workers(train, batch_size, epochs=epochs, seed=seed)
    return choice.num_workers, choice.to_dict()


@contextlib.contextmanager
def kept_random_state() -> Iterator[None]:
    """Restore torch's, Python's and NumPy's global random states on exit (a dataset
    that augments at random draws from them while it is measured)."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)
