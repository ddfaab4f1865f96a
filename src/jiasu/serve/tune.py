"""`jiasu serve --tune --p99-ms X`: the batching settings chosen by measurement.

For each pair of max batch size and max delay in a grid, the real server (`jiasu serve`'s
own, in a child process on a free loopback port) is started on the artifact, and
closed-loop clients in this process (one keep-alive connection each, the standard
library's `http.client` in threads) send one-sample requests at several concurrencies.
A pair's *goodput* is the most 200 answers per second it gave at a concurrency whose p99
latency stayed within the bound with no failed request; the pair of highest goodput wins
(within 10% of it, the shorter delay, then the larger batch). The pick and every trial are
recorded under ``"serve"`` in the artifact's description (``artifact.json``, or the
``model.json`` of a model directory), written atomically, and `jiasu serve` uses them by
default (`recorded_settings`). Only a folder jiasu wrote is written to.
"""

from __future__ import annotations

import dataclasses
import http.client
import io
import json
import math
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jiasu.core.atomic import JiasuFolder, atomic_path
from jiasu.core.errors import CheckpointError, ConfigError
from jiasu.serve.settings import ServeSettings

HOST = "127.0.0.1"
KEY = "serve"  # the description's key holding the tuned settings
BATCH_SIZES = (1, 8, 32, 64)
DELAYS_MS = (0.0, 1.0, 4.0)
CONCURRENCIES = (1, 16, 64)
# Goodputs within 10% of the best are equal: prefer the shorter delay. A delay costs every
# lone request its length, and one trial's goodput is not known closer than that: ResNet-50
# int8 (AMX), 4 ms won by 4.5% (245 against 235 req/s at 64 clients) at the price of 5 ms
# at 1 client (p50 15.0 against 9.8 ms), while trials of neighbouring pairs differed by 13%.
TIE = 0.10
START_TIMEOUT_S = 300.0  # loading and warming up a large model on a busy machine
WARM_S = 0.5  # each trial's first half second is not counted
MAX_REQUESTS = 50_000  # per trial: a bound on the count as well as the time
# A trial whose window holds fewer than MIN_ROUNDS answers per client (at its p50) is run
# again, long enough for that (at most MAX_STRETCH times `seconds`): ResNet-50 int8 behind
# 64 clients answers in ~0.9 s, so 3 s held three rounds, the first a burst: its trials
# ranged 64-85 req/s at 64 clients, batch 8 (77 req/s at 16 clients) was picked within
# TIE of batch 32 with a 4 ms delay (85), and gave 70 req/s at 64 clients in the benchmark
# that followed (runs/serve_load/resnet50_zen4_lat.md).
MIN_ROUNDS = 8
MAX_STRETCH = 4.0


@dataclasses.dataclass(frozen=True)
class Trial:
    """One concurrency against one pair of settings."""

    max_batch_size: int
    max_delay_ms: float
    concurrency: int
    rps: float  # 200 answers per second
    p50_ms: float
    p99_ms: float
    failed: int  # answers other than 200, and connection errors

    def within(self, p99_ms: float) -> bool:
        return self.failed == 0 and self.rps > 0 and self.p99_ms <= p99_ms


@dataclasses.dataclass(frozen=True)
class TuneResult:
    """The trials, the bound, and the pair chosen."""

    p99_bound_ms: float
    trials: tuple[Trial, ...]
    max_batch_size: int
    max_delay_ms: float
    goodput_rps: float  # the chosen pair's best rate within the bound
    recorded_in: Path

    def text(self) -> str:
        """The trials as a table, and the pick."""
        lines = [f"{'batch':>5} {'delay ms':>8} {'clients':>7} {'req/s':>8} "
                 f"{'p50 ms':>8} {'p99 ms':>8}  within {self.p99_bound_ms:g} ms"]  # fmt: skip
        for t in self.trials:
            mark = "yes" if t.within(self.p99_bound_ms) else "no"
            if t.failed:
                mark += f" ({t.failed} failed)"
            lines.append(
                f"{t.max_batch_size:>5} {t.max_delay_ms:>8g} {t.concurrency:>7} {t.rps:>8.1f} "
                f"{t.p50_ms:>8.2f} {t.p99_ms:>8.2f}  {mark}"
            )
        lines.append(
            f"chosen: --max-batch-size {self.max_batch_size} --max-delay-ms "
            f"{self.max_delay_ms:g} ({self.goodput_rps:.1f} req/s within p99 "
            f"{self.p99_bound_ms:g} ms), recorded in {self.recorded_in}"
        )
        return "\n".join(lines)


def tune(
    directory: str | os.PathLike[str],
    *,
    p99_ms: float,
    name: str | None = None,
    trust_code: bool = False,
    batch_sizes: Sequence[int] | None = None,
    delays_ms: Sequence[float] | None = None,
    concurrencies: Sequence[int] | None = None,
    seconds: float = 3.0,
    progress: Callable[[str], None] | None = None,
) -> TuneResult:
    """Measure the grid (`batch_sizes` × `delays_ms`, each at `concurrencies`, `seconds`
    per trial, longer where that holds fewer than `MIN_ROUNDS` answers per client), record
    the best pair under `p99_ms` in the artifact, and return it.

    A ``ConfigError`` (one sentence) when no pair keeps p99 within the bound even at the
    lowest concurrency; nothing is recorded then.
    """
    from jiasu.serve.server import default_name, load_served, require_extra

    require_extra()
    if isinstance(p99_ms, bool) or not isinstance(p99_ms, int | float) or not p99_ms > 0:
        raise ConfigError(f"--p99-ms is {p99_ms!r}; give a latency bound above 0 (e.g. 50)")
    description, _ = _description(Path(directory))  # refuses what jiasu did not write
    original = description.read_bytes()
    predictor = load_served(directory, trust_code=trust_code)
    name = name or default_name(directory)
    body, kind = _request_body(predictor.signature)
    pairs = _grid(batch_sizes or BATCH_SIZES, delays_ms or DELAYS_MS)
    say = progress or (lambda _line: None)
    trials: list[Trial] = []
    for batch, delay in pairs:
        settings = ServeSettings(name, max_batch_size=batch, max_delay_ms=delay)
        say(f"tuning: max batch {batch}, max delay {delay:g} ms")
        with _Child(Path(directory), settings, trust_code) as child:
            path = f"/v1/models/{name}/predict"
            for clients in concurrencies or CONCURRENCIES:
                trial = _trial(child.port, path, body, kind, clients, seconds, batch, delay)
                if trial.p50_ms * MIN_ROUNDS > seconds * 1000:  # a slow model's window
                    longer = min(trial.p50_ms * MIN_ROUNDS / 1000, seconds * MAX_STRETCH)
                    trial = _trial(child.port, path, body, kind, clients, longer, batch, delay)
                trials.append(trial)
                say(f"  {clients} clients: {trial.rps:.1f} req/s, p99 {trial.p99_ms:.2f} ms")
    best = _pick(trials, p99_ms)
    if best is None:
        lowest = min(trials, key=lambda t: t.p99_ms)
        raise ConfigError(
            f"no setting kept p99 within {p99_ms:g} ms at any concurrency (the lowest was "
            f"{lowest.p99_ms:.1f} ms, batch {lowest.max_batch_size}, {lowest.concurrency} "
            "clients); raise --p99-ms"
        )
    (batch, delay), goodput = best
    result = TuneResult(float(p99_ms), tuple(trials), batch, delay, goodput, description)
    _record(description, original, result)
    return result


def recorded_settings(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """``{"max_batch_size": N, "max_delay_ms": T}`` as ``--tune`` recorded them in the
    artifact in `directory`; ``{}`` when it has none (or is not an artifact)."""
    for name in _DESCRIPTIONS:
        path = Path(directory) / name
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        tuned = meta.get(KEY) if isinstance(meta, dict) else None
        if tuned is None:
            return {}
        try:
            settings = ServeSettings(
                "recorded",
                max_batch_size=tuned["max_batch_size"],
                max_delay_ms=tuned["max_delay_ms"],
            )
        except (TypeError, KeyError, ConfigError):
            raise CheckpointError(
                f"{path} records serve settings jiasu cannot read; run `jiasu serve "
                f"{directory} --tune --p99-ms MS` again, or give --max-batch-size and "
                "--max-delay-ms"
            ) from None
        return {"max_batch_size": settings.max_batch_size, "max_delay_ms": settings.max_delay_ms}
    return {}


# --- the grid and the pick -------------------------------------------------------------
def _grid(batch_sizes: Sequence[int], delays_ms: Sequence[float]) -> list[tuple[int, float]]:
    """Every (batch, delay) pair; batch 1 only once, with no delay (nothing joins it)."""
    pairs: list[tuple[int, float]] = []
    for batch in sorted(set(batch_sizes)):
        for delay in sorted(set(delays_ms)) if batch > 1 else [0.0]:
            ServeSettings("grid", max_batch_size=batch, max_delay_ms=delay)  # one sentence
            pairs.append((batch, float(delay)))
    return pairs


def _pick(trials: Sequence[Trial], p99_ms: float) -> tuple[tuple[int, float], float] | None:
    """The pair of highest goodput under the bound. Ties (within `TIE`): the shorter delay,
    then the larger batch (equal at the load measured, it gives more under a heavier one)."""
    goodput: dict[tuple[int, float], float] = {}
    for t in trials:
        if t.within(p99_ms):
            pair = (t.max_batch_size, t.max_delay_ms)
            goodput[pair] = max(goodput.get(pair, 0.0), t.rps)
    if not goodput:
        return None
    top = max(goodput.values())
    near = [pair for pair, rate in goodput.items() if rate >= (1 - TIE) * top]
    pair = min(near, key=lambda p: (p[1], -p[0]))
    return pair, goodput[pair]


# --- the server under test ----------------------------------------------------------------
class _Child:
    """`jiasu serve`'s server on a free loopback port, in a child process (so the clients
    here do not share its interpreter), stopped with SIGTERM on exit."""

    def __init__(self, directory: Path, settings: ServeSettings, trust_code: bool) -> None:
        config = {"directory": str(directory.resolve()), "trust_code": trust_code,
                  "settings": settings.to_dict()}  # fmt: skip
        self._command = [sys.executable, "-m", "jiasu.serve.tune", json.dumps(config)]
        self.port = 0

    def __enter__(self) -> _Child:
        self._log = tempfile.TemporaryFile("w+")  # a pipe could fill and block the server
        self._process = subprocess.Popen(
            self._command, stdout=subprocess.PIPE, stderr=self._log, text=True
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()  # the port, once the socket is bound
        if not line.strip().isdigit():
            self.__exit__()
            raise ConfigError(f"the server for tuning did not start: {self._error(line)}")
        self.port = int(line)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._ready():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise ConfigError(f"the server for tuning did not get ready: {self._error()}")
            time.sleep(0.2)
        return self

    def _ready(self) -> bool:
        try:
            url = f"http://{HOST}:{self.port}/v2/health/ready"
            with urllib.request.urlopen(url, timeout=5) as answer:
                return bool(answer.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def _error(self, first: str = "") -> str:
        if self._process.poll() is None:
            return first.strip() or "no answer"
        self._log.seek(0)
        lines = (first + self._log.read()).strip().splitlines()
        return lines[-1] if lines else f"exit status {self._process.returncode}"

    def __exit__(self, *_: object) -> None:
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(60)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._log.close()


def _child_main(config_json: str) -> None:
    """In the child: load, bind a free loopback port, print it, serve until SIGTERM."""
    from jiasu.serve import server

    config = json.loads(config_json)
    predictor = server.load_served(config["directory"], trust_code=config["trust_code"])
    sock = server.listen(HOST, 0)
    print(server.bound_port(sock), flush=True)
    settings = ServeSettings.from_dict(config["settings"])
    server.run(predictor, settings, sock, access_log=False)


# --- the clients ---------------------------------------------------------------------------
def _request_body(signature: Any) -> tuple[bytes, str]:
    """One generated sample as an .npy body (one input) or .npz by name (several)."""
    arrays = signature.generate(1)
    buffer = io.BytesIO()
    if len(arrays) == 1:
        np.save(buffer, arrays[0], allow_pickle=False)
    else:
        names = [spec.name for spec in signature.inputs]
        np.savez(buffer, **dict(zip(names, arrays, strict=True)))
    return buffer.getvalue(), "application/x-npy"


def _trial(
    port: int, path: str, body: bytes, kind: str, clients: int, seconds: float,
    batch: int, delay: float,
) -> Trial:  # fmt: skip
    """`clients` closed-loop connections for WARM_S + `seconds`: the answers that arrive
    within the last `seconds` count (those in flight at the end are waited for, unused)."""
    headers = {"Content-Type": kind, "Accept": "application/x-npy"}
    start = time.perf_counter()
    counted_from, end = start + WARM_S, start + WARM_S + seconds
    latencies: list[float] = []
    failed = [0]
    lock = threading.Lock()

    def client() -> None:
        connection = http.client.HTTPConnection(HOST, port, timeout=60)
        mine: list[float] = []
        bad = 0
        while (sent := time.perf_counter()) < end and len(mine) < MAX_REQUESTS // clients:
            try:
                connection.request("POST", path, body, headers)
                answer = connection.getresponse()
                answer.read()
                ok = answer.status == 200
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = http.client.HTTPConnection(HOST, port, timeout=60)
                ok = False
            done = time.perf_counter()
            if counted_from <= done <= end:
                if ok:
                    mine.append(done - sent)
                else:
                    bad += 1
        connection.close()
        with lock:
            latencies.extend(mine)
            failed[0] += bad

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ms = np.asarray(latencies) * 1000 if latencies else np.asarray([np.inf])
    return Trial(
        batch, delay, clients, len(latencies) / seconds,
        float(np.percentile(ms, 50)), float(np.percentile(ms, 99)), failed[0],
    )  # fmt: skip


# --- recording -----------------------------------------------------------------------------
def _folders() -> tuple[JiasuFolder, ...]:
    from jiasu.infer.artifact import FOLDER as ARTIFACT
    from jiasu.models.saved import FOLDER as MODEL_DIR

    return ARTIFACT, MODEL_DIR


_DESCRIPTIONS = ("artifact.json", "model.json")


def _description(directory: Path) -> tuple[Path, dict[str, Any]]:
    """The description file of the jiasu folder `directory` and its contents."""
    for kind in _folders():
        meta = kind.read(directory)
        if meta is not None and kind.owns(directory):
            return directory / kind.description, meta
    raise ConfigError(
        f"{directory} is not an inference artifact or model directory jiasu wrote, so "
        "--tune cannot record its settings there; create one with `jiasu optimize MODEL "
        "--out DIR`"
    )


def _record(path: Path, before: bytes, result: TuneResult) -> None:
    """Add the pick and the trials under "serve" in the description at `path`, atomically;
    refused if the file is no longer `before`, as it was when tuning began (another jiasu
    rewrote it meanwhile)."""
    meta = json.loads(before)
    meta[KEY] = {
        "max_batch_size": result.max_batch_size,
        "max_delay_ms": result.max_delay_ms,
        "p99_bound_ms": result.p99_bound_ms,
        "goodput_rps": round(result.goodput_rps, 2),
        "measured_on": {
            "cpus": os.cpu_count(),
            "machine": platform.machine(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
        "trials": [_finite(dataclasses.asdict(t)) for t in result.trials],
    }
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(meta, indent=2, allow_nan=False) + "\n", encoding="utf-8")
        if path.read_bytes() != before:
            raise ConfigError(
                f"{path} changed while jiasu was tuning (another jiasu wrote it); run --tune again"
            )


def _finite(row: dict[str, Any]) -> dict[str, Any]:
    """JSON has no infinity: a trial with no answer has latencies null."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in row.items()}


if __name__ == "__main__":
    _child_main(sys.argv[1])
