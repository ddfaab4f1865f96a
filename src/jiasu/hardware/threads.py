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


def _check_threads(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"thread count {n!r} is invalid; use a whole number of at least 1")
    return n


def set_threads(n: int) -> int:
    """Set torch's intra-op thread count to `n` and return the previous count.

    `n` larger than the CPUs available is allowed (torch accepts it), but it
    oversubscribes the cores and is usually slower; see `default_threads()`.
    """
    _check_threads(n)
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
