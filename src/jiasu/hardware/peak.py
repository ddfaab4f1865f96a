"""How fast can this machine go? Peak matmul rate (fp32, bf16) and memory bandwidth.

`jiasu doctor --measure` runs `measure_peak()` and stores the result in a small JSON
cache (`$JIASU_CACHE_DIR/peak.json`, else `~/.cache/jiasu/peak.json`); reports read it
back with `load_peak()` and show each run's achieved FLOP rate as a fraction of the peak,
so a user sees how much room is left.

The peak is the best of several timed calls (after warm-up) of a large square matmul,
``2·n³`` FLOPs each, and of a large tensor copy, which reads and writes every byte
(``2 · nbytes`` of traffic, as STREAM's copy counts it).

>>> peak = measure_peak(matmul_size=128, copy_mib=4, repeats=2)
>>> peak.matmul_fp32_flops_per_s > 0
True
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from jiasu.core.atomic import atomic_write_text
from jiasu.hardware.cpu import cpu_info
from jiasu.measure.benchmark import measure

ENV_CACHE_DIR = "JIASU_CACHE_DIR"
PEAK_FILE = "peak.json"


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
    measured_at: str
    matmul_size: int

    def flops_per_s(self, precision: str) -> float | None:
        """The peak for `precision` ("fp32" or "bf16"); None when not measured."""
        if precision == "fp32":
            return self.matmul_fp32_flops_per_s
        if precision == "bf16":
            return self.matmul_bf16_flops_per_s
        return None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Peak:
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
        )


def peak_cache_path() -> Path:
    """``$JIASU_CACHE_DIR/peak.json``, or ``~/.cache/jiasu/peak.json`` when it is unset."""
    parent = os.environ.get(ENV_CACHE_DIR)
    base = Path(parent) if parent else Path.home() / ".cache" / "jiasu"
    return base / PEAK_FILE


def _best_rate(fn: Any, work: float, repeats: int) -> float:
    m = measure(fn, warmup=2, repeats=repeats)
    fastest = min(m.seconds)
    return work / fastest if fastest > 0 else float("inf")


def _matmul_rate(n: int, dtype: torch.dtype, repeats: int) -> float | None:
    try:
        a = torch.randn(n, n).to(dtype)
        b = torch.randn(n, n).to(dtype)
        out = torch.empty(n, n, dtype=dtype)
        return _best_rate(lambda: torch.mm(a, b, out=out), 2.0 * n**3, repeats)
    except (RuntimeError, TypeError):  # e.g. no bf16 matmul kernel on this CPU build
        return None


def _copy_rate(mib: int, repeats: int) -> float:
    numel = mib * 2**20 // 4
    src = torch.ones(numel, dtype=torch.float32)
    dst = torch.empty_like(src)
    return _best_rate(lambda: dst.copy_(src), 2.0 * src.nbytes, repeats)


def measure_peak(*, matmul_size: int = 2048, copy_mib: int = 256, repeats: int = 10) -> Peak:
    """Measure this CPU's peak fp32/bf16 matmul rate and memory bandwidth (a few seconds).

    Uses torch's current intra-op thread count (`torch.get_num_threads()`).
    """
    fp32 = _matmul_rate(matmul_size, torch.float32, repeats)
    if fp32 is None:  # pragma: no cover - fp32 matmul always exists
        raise RuntimeError("fp32 matmul failed")
    return Peak(
        matmul_fp32_flops_per_s=fp32,
        matmul_bf16_flops_per_s=_matmul_rate(matmul_size, torch.bfloat16, repeats),
        memory_bytes_per_s=_copy_rate(copy_mib, repeats),
        threads=torch.get_num_threads(),
        device="cpu",
        cpu_model=cpu_info().model,
        hostname=socket.gethostname(),
        torch=torch.__version__,
        measured_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        matmul_size=matmul_size,
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
