"""How much memory this process may still allocate, to refuse a declared size before allocating.

Files declare sizes in their headers (IDX dimensions, a .npy shape, model arguments); a
hostile or damaged header can claim far more than the machine holds. Readers compare
the declared size with `available_memory_bytes()` before they allocate anything.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def available_memory_bytes() -> int | None:
    """Bytes this process can allocate without swapping, or None when the OS does not say.

    The smallest of: Linux's ``MemAvailable`` (free memory plus reclaimable caches), the
    room left under a cgroup v2 memory limit (containers), and — where /proc is
    missing — the free physical pages that ``os.sysconf`` reports.
    """
    candidates: list[int] = []
    meminfo = _meminfo_available()
    if meminfo is not None:
        candidates.append(meminfo)
    else:
        with contextlib.suppress(ValueError, OSError, AttributeError):
            candidates.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))
    cgroup = _cgroup_room()
    if cgroup is not None:
        candidates.append(cgroup)
    return min(candidates) if candidates else None


def format_bytes(n: int | float) -> str:
    """A byte count for a message: ``'47.0 MB'``, ``'1.0 TB'`` (decimal units).

    >>> format_bytes(47_040_000)
    '47.0 MB'
    """
    value = float(n)
    for unit in ("bytes", "kB", "MB", "GB", "TB", "PB"):
        if value < 1000 or unit == "PB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def check_fits_in_memory(size_bytes: int, what: str, fix: str) -> None:
    """Raise `DataError` when `what` (e.g. "x.npy holds an array of") needs more than the
    memory available; `fix` says what to do. Nothing is checked where the OS does not say."""
    from jiasu.core.errors import DataError

    available = available_memory_bytes()
    if available is not None and size_bytes > available:
        raise DataError(
            f"{what} {format_bytes(size_bytes)}, more than the {format_bytes(available)} of "
            f"memory available; {fix}"
        )


def _meminfo_available() -> int | None:
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("MemAvailable:"):
            with contextlib.suppress(ValueError, IndexError):
                return int(line.split()[1]) * 1024  # the file counts in KiB
    return None


def _cgroup_room() -> int | None:
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = Path("/sys/fs/cgroup/memory.current").read_text().strip()
    except OSError:
        return None
    if not (limit.isdigit() and used.isdigit()):
        return None  # "max": no limit
    return max(0, int(limit) - int(used))
