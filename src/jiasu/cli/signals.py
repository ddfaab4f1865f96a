"""SIGTERM handled as Ctrl-C: the same cleanup runs, and the command ends cleanly.

`kill PID`, a job scheduler's time limit, `docker stop` or systemd send SIGTERM. Python's
default for it ends the process at once, skipping every ``finally`` and ``except`` block:
staging folders stay behind and nothing is reported. Inside `terminate_as_interrupt` a
SIGTERM raises `Terminated` (a `KeyboardInterrupt`) in the main thread instead, so the
atomic writers remove their staging folders and the CLI prints ``interrupted`` and exits
143 (128 + 15, what a shell reports for a process ended by SIGTERM; Ctrl-C gives 130).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM."""

    exit_code = 143


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """While inside, SIGTERM raises `Terminated` in the main thread (once: a second SIGTERM
    during the cleanup it started is ignored, so the cleanup can finish)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    raised = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal raised
        if not raised:
            raised = True
            raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def exit_code(interrupt: KeyboardInterrupt) -> int:
    """The exit status for an interrupt: 143 after SIGTERM, 130 after Ctrl-C."""
    return Terminated.exit_code if isinstance(interrupt, Terminated) else 130
