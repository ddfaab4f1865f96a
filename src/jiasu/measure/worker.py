"""The timing worker: one case built and timed alone in its own Python process.

Started by `jiasu.measure.isolated` as ``python -m jiasu.measure.worker``; speaks JSON
lines. The first line names the case::

    {"factory": "pkg.module:function", "kwargs": {...}, "sys_path": [...], "threads": 2}

The factory is imported and called with the keyword arguments; it returns the zero-argument
callable to time. The case comes from the jiasu process that started the worker, never from a
file: `optimize` times its finalists with ``jiasu.infer.isolation:timed_predictor``, which
loads each artifact with `jiasu.load` (and lets it import a model factory only when the user
named that factory in the same run). The worker answers ``{"ok": true, "build_s": ...}``
(or ``{"ok": false, "error": ...}`` and exits), then serves commands until stdin closes:

    {"cmd": "time", "warmup": 5, "calls": 200}  →  {"ok": true, "seconds": [...]}
    {"cmd": "exit"}

Protocol lines go to a private copy of the original stdout; file descriptor 1 is pointed at
stderr, so whatever a runtime prints (even from C) cannot corrupt the protocol.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from jiasu.core.errors import one_line
from jiasu.core.imports import import_attribute
from jiasu.measure.benchmark import measure


def _reply(channel: TextIO, message: dict[str, Any]) -> None:
    channel.write(json.dumps(message) + "\n")
    channel.flush()


def build(spec: dict[str, Any]) -> Callable[[], object]:
    """Import `spec["factory"]` ("pkg.module:function") and call it with `spec["kwargs"]`."""
    for entry in spec.get("sys_path", []):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    threads = spec.get("threads")
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    factory = import_attribute(str(spec["factory"]), what="timing case factory")
    if not callable(factory):
        raise TypeError(f"timing case factory {spec['factory']} is not callable")
    fn = factory(**spec.get("kwargs", {}))
    if not callable(fn):
        raise TypeError(f"factory {spec['factory']} returned {type(fn).__name__}, not a callable")
    return fn


def time_block(fn: Callable[[], object], warmup: int, calls: int) -> list[float]:
    """`warmup` untimed calls, then the seconds of each of `calls` timed calls."""
    return list(measure(fn, warmup=warmup, repeats=calls).seconds)


def main() -> None:
    channel = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)  # anything printed from here on, by Python or C, goes to stderr
    sys.stdout = sys.stderr
    first = sys.stdin.readline()
    if not first:
        return
    try:
        start = time.perf_counter()
        fn = build(json.loads(first))
        _reply(channel, {"ok": True, "build_s": time.perf_counter() - start})
    except BaseException as exc:  # reported to the parent, which records the case as failed
        _reply(channel, {"ok": False, "error": one_line(exc)})
        return
    for line in sys.stdin:
        command = json.loads(line)
        if command.get("cmd") == "exit":
            return
        try:
            seconds = time_block(fn, int(command["warmup"]), int(command["calls"]))
            _reply(channel, {"ok": True, "seconds": seconds})
        except Exception as exc:
            _reply(channel, {"ok": False, "error": one_line(exc)})


if __name__ == "__main__":
    main()
