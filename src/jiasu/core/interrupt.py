"""SIGTERM handled as Ctrl-C: the same cleanup runs, and the command ends cleanly.

`kill PID`, a job scheduler's time limit, `docker stop` or systemd send SIGTERM. Python's
default for it ends the process at once, skipping every ``finally`` and ``except`` block:
staging folders stay behind and nothing is reported. Inside `terminate_as_interrupt` a
SIGTERM raises `Terminated` (a `KeyboardInterrupt`) in the main thread instead, so the
atomic writers remove their staging folders and the CLI prints ``interrupted`` and exits
143 (128 + 15, what a shell reports for a process ended by SIGTERM; Ctrl-C gives 130).

The handler's exception surfaces wherever the main thread is when the signal lands; code
that swallows every exception (a bare ``except:`` in a third-party import, a C extension
that clears errors) would lose it, and the command would run on as if nothing was sent (a
CI run once trained all 50 epochs after a SIGTERM). Long loops therefore also call
`raise_if_terminated` at each step: a SIGTERM whose exception never left the handler's
frame is raised there.
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
            _pending.set()
            raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        _pending.clear()


# set by the handler; cleared by the first `raise_if_terminated` (the loop's own raise)
_pending = threading.Event()


def raise_if_terminated() -> None:
    """Raise `Terminated` if a SIGTERM arrived and was not raised here yet (one flag read:
    cheap enough for every training step)."""
    if _pending.is_set():
        _pending.clear()
        raise Terminated()


def exit_code(interrupt: KeyboardInterrupt) -> int:
    """The exit status for an interrupt: 143 after SIGTERM, 130 after Ctrl-C."""
    return Terminated.exit_code if isinstance(interrupt, Terminated) else 130
