"""How fast can this machine go? Peak matmul rate (fp32, bf16) and memory bandwidth.

`jiasu doctor --measure` runs `measure_peak()` and stores the result in a small JSON
cache (`peak.json` in `jiasu.core.cache.cache_dir()`); reports read it
back with `load_peak()` and show each run's achieved FLOP rate as a fraction of the peak,
so a user sees how much room is left.

Each rate is the best of several short *rounds*, spaced apart in time, of a few timed
calls (after warm-up) of a large square matmul, ``2·n³`` FLOPs each, and of a large tensor
copy, which reads and writes every byte (``2 · nbytes`` of traffic, as STREAM's copy
counts it). Other work on the machine only ever slows a call down, so the fastest round
is the nearest to what the hardware can do; a burst of load that lasts a second spoils
some rounds, not the peak. The rounds' spread, the load when it was measured and the time
are recorded with it, and every report says how old and how noisy the peak it divides by
is (`describe_peak`), with a warning when it is stale or noisy (`peak_warnings`).

>>> peak = measure_peak(matmul_size=128, copy_mib=4, repeats=2, pause_s=0)
>>> peak.matmul_fp32_flops_per_s > 0 and peak.rounds == 2
True
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from jiasu.core.atomic import atomic_write_text
from jiasu.core.cache import cache_dir
from jiasu.core.errors import ConfigError
from jiasu.hardware.cpu import cpu_info
from jiasu.hardware.threads import default_threads

PEAK_FILE = "peak.json"
MAX_AGE_S = 30 * 24 * 3600  # an older peak may predate a new torch, BIOS or machine
MAX_SPREAD = 0.10  # rounds further apart than ±10 %: the machine was busy
BUSY_LOAD = 0.5  # a 1-minute load average above half the usable CPUs: the machine was busy


@dataclass(frozen=True)
class Peak:
    """Peak rates measured on one machine with `threads` intra-op threads.

    `matmul_bf16_flops_per_s` is None where bf16 matmul is not supported.
    """

    matmul_fp32_flops_per_s: float
    matmul_bf16_flops_per_s: float | None
    memory_bytes_per_s: float
    threads: int
    device: str
    cpu_model: str
    hostname: str
    torch: str
    measured_at: str  # ISO 8601, UTC
    matmul_size: int
    # How it was measured (absent from peaks cached by jiasu before 0.2: noise unknown).
    rounds: int = 0  # each rate is the best of this many rounds
    fp32_spread: float | None = None  # ± relative spread of the fp32 rounds (`reduce_rates`)
    bf16_spread: float | None = None
    memory_spread: float | None = None
    load_average: float | None = None  # 1-minute load average when the measuring began
    cpus: int | None = None  # CPUs this process could use then

    def flops_per_s(self, precision: str) -> float | None:
        """The peak for `precision` ("fp32" or "bf16"); None when not measured."""
        if precision == "fp32":
            return self.matmul_fp32_flops_per_s
        if precision == "bf16":
            return self.matmul_bf16_flops_per_s
        return None

    def spread(self, precision: str) -> float | None:
        """The ± relative spread of the rounds behind the peak for `precision`."""
        return {"fp32": self.fp32_spread, "bf16": self.bf16_spread}.get(precision)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Peak:
        def maybe(key: str) -> float | None:
            return None if data.get(key) is None else float(data[key])

        return cls(
            matmul_fp32_flops_per_s=float(data["matmul_fp32_flops_per_s"]),
            matmul_bf16_flops_per_s=(
                None
                if data.get("matmul_bf16_flops_per_s") is None
                else float(data["matmul_bf16_flops_per_s"])
            ),
            memory_bytes_per_s=float(data["memory_bytes_per_s"]),
            threads=int(data.get("threads", 0)),
            device=str(data.get("device", "cpu")),
            cpu_model=str(data.get("cpu_model", "")),
            hostname=str(data.get("hostname", "")),
            torch=str(data.get("torch", "")),
            measured_at=str(data.get("measured_at", "")),
            matmul_size=int(data.get("matmul_size", 0)),
            rounds=int(data.get("rounds", 0)),
            fp32_spread=maybe("fp32_spread"),
            bf16_spread=maybe("bf16_spread"),
            memory_spread=maybe("memory_spread"),
            load_average=maybe("load_average"),
            cpus=None if data.get("cpus") is None else int(data["cpus"]),
        )


@dataclass(frozen=True)
class RateStats:
    """What the rounds of one rate measurement come to."""

    best: float  # the fastest round: the peak
    spread: float  # ±: (fastest - slowest) / (fastest + slowest) of the rounds
    rounds: int


def reduce_rates(rates: Sequence[float]) -> RateStats:
    """The peak from each round's rate: their maximum, and how far apart they were.

    Load only ever slows a round down, so the maximum is the estimate of the peak; the
    spread says how much the machine disturbed the measurement (0 when all rounds agree).

    >>> r = reduce_rates([290e9, 300e9, 81e9])
    >>> r.best, round(r.spread, 2), r.rounds
    (300000000000.0, 0.57, 3)
    """
    values = [float(r) for r in rates]
    if not values:
        raise ConfigError("a peak needs at least one measured round; got none")
    if any(not v > 0 or v == float("inf") for v in values):
        raise ConfigError(f"rates must be finite and positive, got {values}")
    best, worst = max(values), min(values)
    return RateStats(best, (best - worst) / (best + worst), len(values))


def peak_age_s(peak: Peak, now: datetime | None = None) -> float | None:
    """Seconds from `peak.measured_at` to `now` (default: now); None if it has no time."""
    try:
        measured = datetime.fromisoformat(peak.measured_at)
    except ValueError:
        return None
    if measured.tzinfo is None:
        measured = measured.replace(tzinfo=timezone.utc)
    return ((now or datetime.now(timezone.utc)) - measured).total_seconds()


def format_age(seconds: float | None) -> str:
    """ "2 h ago", "5 min ago", "3 days ago"; "at an unknown time" without one.

    >>> format_age(7200), format_age(30), format_age(3 * 86400 + 5)
    ('2 h ago', 'just now', '3 days ago')
    """
    if seconds is None:
        return "at an unknown time"
    if seconds < 60:
        return "just now"
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit} ago"
    return "just now"  # pragma: no cover


def describe_peak(peak: Peak, precision: str = "fp32", now: datetime | None = None) -> str:
    """The peak a share is taken of, with its age and noise: "the 300 GFLOP/s fp32 peak
    measured 2 h ago, ±4 %" ("noise unknown" for a peak cached by an older jiasu)."""
    rate = peak.flops_per_s(precision)
    spread = peak.spread(precision)
    noise = "noise unknown" if spread is None else f"±{spread:.0%}"
    figure = "unmeasured" if rate is None else f"{rate / 1e9:,.0f} GFLOP/s"
    return f"the {figure} {precision} peak measured {format_age(peak_age_s(peak, now))}, {noise}"


def peak_warnings(peak: Peak, now: datetime | None = None) -> list[str]:
    """Why the peak (and so every share of it) may be wrong; empty when it looks sound."""
    warnings = []
    age = peak_age_s(peak, now)
    advice = "rerun `jiasu doctor --measure` on a quiet machine"
    if age is None:
        warnings.append(f"the peak has no valid measurement time; {advice}")
    elif age > MAX_AGE_S:
        warnings.append(f"the peak was measured {format_age(age)}; {advice}")
    if peak.fp32_spread is None:
        warnings.append(f"the peak's noise was not recorded (an older jiasu measured it); {advice}")
    elif peak.fp32_spread > MAX_SPREAD:
        warnings.append(
            f"the peak's rounds varied by ±{peak.fp32_spread:.0%}, the machine was busy; {advice}"
        )
    if peak.load_average is not None and peak.cpus and peak.load_average > BUSY_LOAD * peak.cpus:
        warnings.append(
            f"the machine was busy when the peak was measured (load {peak.load_average:.1f} "
            f"on {peak.cpus} CPUs), so it may be low; {advice}"
        )
    return warnings


def peak_quality(peak: Peak, now: datetime | None = None) -> dict[str, Any]:
    """Age, noise and warnings of `peak` for JSON (age relative to `now`)."""
    return {
        "age_s": peak_age_s(peak, now),
        "fp32_spread": peak.fp32_spread,
        "rounds": peak.rounds,
        "warnings": peak_warnings(peak, now),
    }


def peak_cache_path() -> Path:
    """``$JIASU_CACHE_DIR/peak.json``, or ``~/.cache/jiasu/peak.json`` when it is unset."""
    return cache_dir() / PEAK_FILE


@dataclass(frozen=True)
class _Rounds:
    rounds: int
    calls: int  # timed calls per round; the round's rate is its fastest
    pause_s: float  # idle time before each round, so a burst of load spoils only some
    budget_s: float = 4.0  # timed calls of one rate: fewer rounds (at least 2) when slow


def _round_rates(fn: Callable[[], object], work: float, how: _Rounds) -> list[float]:
    """`work / seconds` of the fastest call in each round, after warm-up.

    A slow kernel (bf16 matmul on a CPU without bf16 units takes seconds a call) gets one
    warm-up, one call per round and fewer rounds, at least two, so that the measurement
    stays near `how.budget_s`.
    """
    start = time.perf_counter()
    fn()
    first_s = max(time.perf_counter() - start, 1e-9)  # a warm-up, timed to size the rounds
    cheap = first_s * how.calls * 2 <= how.budget_s
    if cheap:
        fn()  # a second warm-up: the first call of a kernel can be slow once
    calls = how.calls if cheap else 1
    rounds = max(2, min(how.rounds, int(how.budget_s / (first_s * calls))))
    rates = []
    for _ in range(rounds):
        time.sleep(how.pause_s)
        fastest = float("inf")
        for _ in range(calls):
            start = time.perf_counter()
            fn()
            fastest = min(fastest, time.perf_counter() - start)
        rates.append(work / max(fastest, 1e-9))
    return rates


_PROBE_SIZE = 256  # a matmul small enough to time any kernel, however slow, in well under 1 s


def _affordable_size(n: int, dtype: torch.dtype, how: _Rounds) -> int:
    """`n`, or a smaller size whose warm-up and two rounds of one call fit `how.budget_s`.

    A kernel without hardware support can be 200× slower than fp32 (bf16 on a CPU without
    AVX-512 BF16 or AMX: 78 s for one 2048² matmul, seen here); its rate at a smaller size
    is as near its peak as it gets, and `jiasu doctor --measure` stays a matter of seconds.
    """
    a = torch.randn(_PROBE_SIZE, _PROBE_SIZE).to(dtype)
    torch.mm(a, a)  # first call: kernel selection, page faults
    start = time.perf_counter()
    torch.mm(a, a)
    probe_s = max(time.perf_counter() - start, 1e-9)
    while n > _PROBE_SIZE and 3 * probe_s * (n / _PROBE_SIZE) ** 3 > how.budget_s:
        n //= 2  # time grows as n³
    return max(n, _PROBE_SIZE)


def _matmul_rates(n: int, dtype: torch.dtype, how: _Rounds) -> list[float] | None:
    try:
        n = _affordable_size(n, dtype, how)
        a = torch.randn(n, n).to(dtype)
        b = torch.randn(n, n).to(dtype)
        out = torch.empty(n, n, dtype=dtype)
        return _round_rates(lambda: torch.mm(a, b, out=out), 2.0 * n**3, how)
    except (RuntimeError, TypeError):  # e.g. no bf16 matmul kernel on this CPU build
        return None


def _copy_rates(mib: int, how: _Rounds) -> list[float]:
    numel = mib * 2**20 // 4
    src = torch.ones(numel, dtype=torch.float32)
    dst = torch.empty_like(src)
    return _round_rates(lambda: dst.copy_(src), 2.0 * src.nbytes, how)


def _load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # not on Windows
        return None


def measure_peak(
    *,
    matmul_size: int = 2048,
    copy_mib: int = 256,
    repeats: int = 7,
    calls: int = 2,
    pause_s: float = 0.25,
) -> Peak:
    """Measure this CPU's peak fp32/bf16 matmul rate and memory bandwidth (a few seconds).

    Each rate is the best of `repeats` rounds of `calls` timed calls, `pause_s` apart
    (`reduce_rates`). Uses torch's current intra-op thread count.
    """
    if repeats < 1 or calls < 1 or pause_s < 0:
        raise ConfigError("measure_peak needs repeats >= 1, calls >= 1 and pause_s >= 0")
    load = _load_average()
    how = _Rounds(repeats, calls, pause_s)
    fp32 = _matmul_rates(matmul_size, torch.float32, how)
    if fp32 is None:  # pragma: no cover - fp32 matmul always exists
        raise RuntimeError("fp32 matmul failed")
    bf16 = _matmul_rates(matmul_size, torch.bfloat16, how)
    return peak_from_rounds(
        fp32, bf16, _copy_rates(copy_mib, how), matmul_size=matmul_size, load_average=load
    )


def peak_from_rounds(
    fp32: Sequence[float],
    bf16: Sequence[float] | None,
    memory: Sequence[float],
    *,
    matmul_size: int,
    load_average: float | None = None,
    measured_at: datetime | None = None,
) -> Peak:
    """A `Peak` for this machine from each round's measured rates (FLOP/s, bytes/s)."""
    f, m = reduce_rates(fp32), reduce_rates(memory)
    b = reduce_rates(bf16) if bf16 else None
    when = measured_at or datetime.now(timezone.utc)
    return Peak(
        matmul_fp32_flops_per_s=f.best,
        matmul_bf16_flops_per_s=b.best if b else None,
        memory_bytes_per_s=m.best,
        threads=torch.get_num_threads(),
        device="cpu",
        cpu_model=cpu_info().model,
        hostname=socket.gethostname(),
        torch=torch.__version__,
        measured_at=when.isoformat(timespec="seconds"),
        matmul_size=matmul_size,
        rounds=f.rounds,
        fp32_spread=f.spread,
        bf16_spread=b.spread if b else None,
        memory_spread=m.spread,
        load_average=load_average,
        cpus=default_threads(),
    )


def save_peak(peak: Peak, path: str | os.PathLike[str] | None = None) -> Path:
    """Write `peak` atomically to `path` (default: `peak_cache_path()`) and return the path."""
    target = Path(path) if path is not None else peak_cache_path()
    atomic_write_text(target, json.dumps(peak.to_dict(), indent=2) + "\n")
    return target


def load_peak(path: str | os.PathLike[str] | None = None) -> Peak | None:
    """The cached peak, or None when there is none or it cannot be read (never raises)."""
    target = Path(path) if path is not None else peak_cache_path()
    try:
        return Peak.from_dict(json.loads(target.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None
