"""Factories for `compare_isolated` tests, imported by the timing workers (not by pytest)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable


def sleeper(ms: float, parent_pid: int) -> Callable[[], None]:
    """Sleeps `ms` per call; fails if it is ever called in the parent process."""

    def call() -> None:
        if os.getpid() == parent_pid:
            raise RuntimeError("ran in the parent process, not alone in its own")
        time.sleep(ms / 1e3)

    return call


def noisy(ms: float) -> Callable[[], None]:
    """Prints to stdout from Python and from the file descriptor, as runtimes do."""
    print("a runtime's banner on stdout")
    os.write(1, b"C-level output on fd 1\n")
    sys.stdout.flush()

    def call() -> None:
        print("chatter during a call")
        time.sleep(ms / 1e3)

    return call


def broken() -> Callable[[], None]:
    raise ValueError("model file missing; pass --model")


def crashes_on_call() -> Callable[[], None]:
    return lambda: os._exit(3)


def fails_on_call() -> Callable[[], None]:
    def call() -> None:
        raise RuntimeError("input shape mismatch")

    return call


def hangs_on_build() -> Callable[[], None]:
    time.sleep(600)
    return lambda: None


def counting_sleeper(ms: float, log: str) -> Callable[[], None]:
    """Sleeps `ms` per call and appends a line to the file `log` for each call."""

    def call() -> None:
        time.sleep(ms / 1e3)
        with open(log, "a") as f:
            f.write("call\n")

    return call
