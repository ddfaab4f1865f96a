"""How many CPU threads PyTorch uses for intra-op parallelism.

>>> previous = set_threads(1)
>>> with threads(2):
...     pass
>>> _ = set_threads(previous)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from jiasu.core.errors import ConfigError


def default_threads() -> int:
    """The number of CPUs this process may run on (its affinity mask where the OS has one).

    This is what a container or `taskset` allows, which can be fewer than
    `os.cpu_count()` reports for the whole machine.
    """
    if hasattr(os, "sched_getaffinity"):
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except OSError:
            pass
    return os.cpu_count() or 1


def max_threads() -> int:
    """The largest thread count jiasu accepts: 4 × this machine's CPUs.

    More than the CPUs oversubscribes the cores (allowed, usually slower); far more makes
    torch's thread pool exhaust the process's resources (100000 threads crash it).
    """
    return 4 * (os.cpu_count() or 1)


def check_threads(n: object, what: str = "thread count") -> int:
    """Return `n` when it is a whole number from 1 to `max_threads()`; else `ConfigError`."""
    top = max_threads()
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= top:
        raise ConfigError(
            f"{what} {n!r:.40} is out of range; use a whole number from 1 to {top} "
            f"(4 × the {top // 4} CPUs of this machine)"
        )
    return n


def set_threads(n: int) -> int:
    """Set torch's intra-op thread count to `n` and return the previous count.

    `n` larger than the CPUs available is allowed up to `max_threads()`, but it
    oversubscribes the cores and is usually slower; see `default_threads()`.
    """
    check_threads(n)
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    return previous


@contextmanager
def threads(n: int) -> Iterator[int]:
    """Run a block with `n` intra-op threads, restoring the previous count afterwards.

    >>> with threads(1) as n:
    ...     torch.get_num_threads() == n == 1
    True
    """
    previous = set_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(previous)
