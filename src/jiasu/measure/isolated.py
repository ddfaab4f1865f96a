"""Timing cases that must not share a process: each in its own worker, in alternating blocks.

Runtimes keep thread pools (PyTorch's OpenMP, OpenVINO's TBB, ONNX Runtime's own) whose
threads spin or wake after a call. Timed call by call in one process on a small machine,
one runtime's pool steals cores from the next call of another, and the ranking comes out
wrong (measured here: a 2.9 ms candidate timed at 4.7 ms, p90 31 ms, next to two other
runtimes). A deployed model runs alone in its process, so that is how it is timed here:

* each `Isolated` case is built in its own Python process (`jiasu.measure.worker`) from
  a factory, so no pool of another runtime exists beside it; plain callables run in this
  process (for what cannot be rebuilt elsewhere);
* the cases are timed in `rounds` rounds of blocks (a block: a few untimed calls, then
  enough timed calls to last about `seconds / (rounds × cases)`), the order rotated each
  round and a pause before each block so the previous block's spinning threads go idle.
  Blocks keep pools from fighting; rounds keep drift (other load, heat) from favouring
  whichever case ran when the machine was quiet.

The result is the same `Comparison` as `compare` returns: per-call measurements, the
median speedup over the baseline, and per-round paired ratios (each round's baseline
median over the case's) as `speedup_summary`.

>>> cases = {"sum": Isolated("builtins:sum", {"start": 0}), ...}  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from jiasu.core.errors import ConfigError, one_line
from jiasu.measure.benchmark import (
    BenchmarkError,
    CaseResult,
    Comparison,
    Measurement,
    _check_count,
)
from jiasu.measure.stats import ratio_summary
from jiasu.measure.worker import time_block

_MAX_CALLS_PER_BLOCK = 50_000
# A call at least this long (seconds) is warmed up once, then timed in blocks of two calls
# with no re-warming, not warmed `warmup` times and timed in blocks of a re-warming call
# and three: BERT-base at batch 32 takes ~3 s a call here, and the old blocks for its 4
# finalists made the timing alone 335 s of a 514 s search. Caches and thread pools warm
# within one such call; the rounds still pair and rotate.
SLOW_CALL_S = 0.5
# With `lean`, a slow case whose probe took this many times the fastest case's is timed
# one call a block, and so is a call of `ONE_CALL_S` seconds or more, whose cold first
# call also stands for its probe: ViT-B/16 at batch 32 on 2 Zen 4 cores takes 7-10 s a
# call, and 4 finalists at 8 calls each were 297 s of a 383 s search.
ONE_CALL_BEHIND = 1.5
ONE_CALL_S = 2.0


@dataclass(frozen=True)
class Isolated:
    """A case built in its own process: ``factory(**kwargs)`` returns the callable to time.

    `factory` is "package.module:function", importable in a fresh interpreter (add folders
    with `sys_path`); `kwargs` must be JSON-able. `threads` sets torch's intra-op threads
    in the worker before the factory runs (None: torch's default).
    """

    factory: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    sys_path: tuple[str, ...] = ()
    threads: int | None = None

    def spec(self) -> dict[str, Any]:
        return {
            "factory": self.factory,
            "kwargs": dict(self.kwargs),
            "sys_path": list(self.sys_path),
            "threads": self.threads,
        }


class _CaseFailed(Exception):
    """A case could not be built or timed; the message is its one-line reason."""


class _Local:
    def __init__(self, fn: Callable[[], object]) -> None:
        self.fn = fn

    def ready(self, timeout_s: float) -> None:
        return None

    def block(self, warmup: int, calls: int, timeout_s: float) -> list[float]:
        try:
            return time_block(self.fn, warmup, calls)
        except Exception as exc:
            raise _CaseFailed(one_line(exc)) from exc

    def close(self) -> None:
        return None


class _Remote:
    """A worker process running one `Isolated` case."""

    def __init__(self, case: Isolated) -> None:
        self._log = tempfile.TemporaryFile(mode="w+b")  # noqa: SIM115 (closed in close())
        env = dict(os.environ)
        # The worker imports what this process can: jiasu itself, and the folders this
        # process added to sys.path (where a user's model factory may live).
        package_root = str(Path(__file__).resolve().parents[2])  # the folder holding jiasu/
        here = [p for p in sys.path if p and os.path.isdir(p)]
        paths = [package_root, *here, env.get("PYTHONPATH", "")]
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(p for p in paths if p))
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "jiasu.measure.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
        )
        self._send(case.spec())

    def _send(self, message: dict[str, Any]) -> None:
        stdin = self._proc.stdin
        assert stdin is not None
        try:
            stdin.write((json.dumps(message) + "\n").encode())
            stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise _CaseFailed(self._died("stopped")) from exc

    def _receive(self, timeout_s: float) -> dict[str, Any]:
        stdout: IO[bytes] | None = self._proc.stdout
        assert stdout is not None
        if os.name != "nt":  # Windows cannot select() on pipes: there, wait without a limit
            readable, _, _ = select.select([stdout], [], [], timeout_s)
            if not readable:
                self._proc.kill()
                raise _CaseFailed(f"the timing worker gave no answer within {timeout_s:.0f} s")
        line = stdout.readline()
        if not line:
            raise _CaseFailed(self._died("exited"))
        reply: dict[str, Any] = json.loads(line)
        if not reply.get("ok"):
            raise _CaseFailed(str(reply.get("error", "unknown error")))
        return reply

    def _died(self, what: str) -> str:
        code = self._proc.wait(timeout=30)
        self._log.seek(0)
        lines = [ln for ln in self._log.read().decode(errors="replace").splitlines() if ln.strip()]
        last = f": {lines[-1].strip()[:200]}" if lines else ""
        return f"the timing worker {what} (exit status {code}){last}"

    def ready(self, timeout_s: float) -> None:
        self._receive(timeout_s)

    def block(self, warmup: int, calls: int, timeout_s: float) -> list[float]:
        self._send({"cmd": "time", "warmup": warmup, "calls": calls})
        return [float(s) for s in self._receive(timeout_s)["seconds"]]

    def close(self) -> None:
        if self._proc.poll() is None:
            with contextlib.suppress(_CaseFailed):
                self._send({"cmd": "exit"})
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        for stream in (self._proc.stdin, self._proc.stdout):
            if stream is not None:
                stream.close()
        self._log.close()


@contextlib.contextmanager
def _started(cases: Mapping[str, Callable[[], object] | Isolated]) -> Iterator[dict[str, Any]]:
    """Start every worker at once (their imports overlap), and stop them all afterwards."""
    runners: dict[str, Any] = {}
    try:
        for name, case in cases.items():
            runners[name] = _Remote(case) if isinstance(case, Isolated) else _Local(case)
        yield runners
    finally:
        for runner in runners.values():
            runner.close()


def compare_isolated(
    cases: Mapping[str, Callable[[], object] | Isolated],
    *,
    baseline: str,
    seconds: float = 6.0,
    rounds: int = 5,
    warmup: int = 5,
    items_per_call: int = 1,
    pause_s: float = 0.05,
    start_timeout_s: float = 300.0,
    progress: Callable[[str], None] | None = None,
    lean: bool = False,
) -> Comparison:
    """Time every case alone (see the module docstring) and its speedup over `baseline`.

    `seconds` is the rough total of timed calls over all cases and rounds; each block has
    at least 3 timed calls (2 for calls of `SLOW_CALL_S` or more; with `lean`, 1 for such
    calls `ONE_CALL_BEHIND` the fastest case's or of `ONE_CALL_S` or more: for a search,
    which must end in minutes and where only the fast cases' order matters, not for a
    benchmark's table). Each case's process is
    warmed up with `warmup` calls once (one for a slow call);
    each block then re-warms with at most half as many calls as it times (none for a slow
    call). A case that
    cannot be built or that raises is recorded with its one-line error and the others go
    on; if the baseline fails, `BenchmarkError`.
    `progress` is called with the case name after each block.
    """
    names = list(cases)
    if baseline not in cases:
        raise ConfigError(
            f"baseline {baseline!r} is not one of the cases; use one of: {', '.join(names)}"
        )
    for name, case in cases.items():
        if not isinstance(case, Isolated) and not callable(case):
            raise ConfigError(f"case {name!r} is neither callable nor Isolated")
    _check_count("rounds", rounds, 1)
    _check_count("warmup", warmup, 0)
    _check_count("items_per_call", items_per_call, 1)
    if not seconds > 0:
        raise ConfigError(f"seconds {seconds!r} is invalid; use a time > 0")

    errors: dict[str, str] = {}
    blocks: dict[str, list[list[float]]] = {name: [] for name in names}
    order: list[str] = []

    def attempt(name: str, action: Callable[[], Any]) -> Any:
        try:
            return action()
        except _CaseFailed as exc:
            if name == baseline:
                raise BenchmarkError(
                    f"baseline case {name!r} failed, so no speedups can be computed: {exc}"
                ) from exc
            errors[name] = str(exc)
            return None

    with _started(cases) as runners:
        for name in names:
            attempt(name, functools.partial(runners[name].ready, start_timeout_s))
        per_call: dict[str, float] = {}
        for name in names:  # warm up, and size the blocks from a short probe
            if name not in errors:
                probed = _probe(runners[name], warmup, start_timeout_s, attempt, name, lean)
                if probed is not None:
                    per_call[name] = probed
        slow = {name for name, s in per_call.items() if s >= SLOW_CALL_S}
        fastest = min(per_call.values(), default=0.0)
        block_s = seconds / (rounds * len(names))
        calls: dict[str, int] = {}
        for name, call_s in per_call.items():
            if name in slow:
                # Far behind the fastest case, its figure only scales the ratios: one call
                # a block (eager BERT-base at batch 32, 5 s a call, 5.7x behind int8).
                far = call_s >= ONE_CALL_BEHIND * fastest or call_s >= ONE_CALL_S
                fewest = 1 if lean and far else 2
            else:
                fewest = 3
            calls[name] = int(min(_MAX_CALLS_PER_BLOCK, max(fewest, block_s / call_s)))
        timeout = max(60.0, 20 * block_s)
        for round_index in range(rounds):
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                if name in errors:
                    continue
                time.sleep(pause_s)
                # The process is warm from its probe: a block re-primes caches after the
                # other cases ran, with at most half as many calls as it times (a slow
                # model's 5 warm-up calls per block would cost more than its timing).
                # A slow call (`SLOW_CALL_S`) is not re-warmed: its weights outgrow the
                # caches anyway, and each re-warming call of ViT-B/16 at batch 32 (4.4 s)
                # added 88 s to a 367 s search.
                rewarm = 0 if name in slow else min(warmup, max(1, calls[name] // 2))
                got = attempt(
                    name, functools.partial(runners[name].block, rewarm, calls[name], timeout)
                )
                if got is not None:
                    blocks[name].append(got)
                    order.append(name)
                    if progress is not None:
                        progress(name)
    return _comparison(baseline, names, blocks, errors, items_per_call, tuple(order))


def _probe(
    runner: Any,
    warmup: int,
    timeout_s: float,
    attempt: Callable[[str, Callable[[], Any]], Any],
    name: str,
    lean: bool = False,
) -> float | None:
    """Warm the case's process up and return its seconds per call (None: it failed).
    One warm-up call and one timed call first; a fast case then gets the rest of its
    `warmup` calls and 3 timed ones, a slow one (`SLOW_CALL_S`) nothing more. With `lean`,
    the warm-up call is timed, and where it took `ONE_CALL_S` or more it is the probe."""
    if lean:
        cold = attempt(name, functools.partial(runner.block, 0, 1, timeout_s))
        if cold is None:
            return None
        if cold[0] >= ONE_CALL_S:
            return float(cold[0])
        first = attempt(name, functools.partial(runner.block, 0, 1, timeout_s))  # warm now
    else:
        first = attempt(name, functools.partial(runner.block, min(warmup, 1), 1, timeout_s))
    if first is None:
        return None
    per_call = max(statistics.median(first), 1e-7)
    if per_call >= SLOW_CALL_S:
        return per_call
    probe = attempt(name, functools.partial(runner.block, max(0, warmup - 1), 3, timeout_s))
    return None if probe is None else max(statistics.median(probe), 1e-7)


def _comparison(
    baseline: str,
    names: list[str],
    blocks: dict[str, list[list[float]]],
    errors: dict[str, str],
    items_per_call: int,
    order: tuple[str, ...],
) -> Comparison:
    base_rounds = [statistics.median(b) for b in blocks[baseline]]
    base = Measurement.from_seconds(
        baseline, tuple(s for b in blocks[baseline] for s in b), items_per_call
    )
    results: dict[str, CaseResult] = {}
    for name in names:
        if name in errors:
            results[name] = CaseResult(name, None, error=errors[name])
            continue
        flat = tuple(s for b in blocks[name] for s in b)
        m = Measurement.from_seconds(name, flat, items_per_call)
        rounds = [statistics.median(b) for b in blocks[name]]
        paired = None
        if len(rounds) == len(base_rounds) and all(r > 0 for r in rounds):
            paired = ratio_summary(base_rounds, rounds)
        speedup = 1.0 if name == baseline else base.median_s / m.median_s
        results[name] = CaseResult(
            name, m, speedup=speedup, speedup_summary=paired, round_medians_s=tuple(rounds)
        )
    return Comparison(baseline, results, True, order)
