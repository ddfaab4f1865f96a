"""`--recipe auto`'s verdicts: keep or drop a technique from paired step times, and the
decisions measured before for the same model on this machine (`DecisionCache`)."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import socket
import statistics
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import torch

from jiasu.core.atomic import atomic_write_text
from jiasu.core.cache import cache_dir
from jiasu.hardware.cpu import cpu_info
from jiasu.measure.stats import paired_ratio_interval
from jiasu.train.model_arg import ExternalModel, ModelSpec

MIN_SPEEDUP = 1.03  # below this a "gain" is within run-to-run noise on a busy machine
# What an undecided probe does when this machine has no earlier decision for the model:
# keep what benchmarks/RESULTS.md measured to pay on CPUs (channels_last 1.38–2.03× on the
# CNN, device_data 1.84× and fused_optimizer 1.11× on the MLP); drop the rest, whose gain
# depends on the hardware (bf16 needs AMX / AVX512-BF16, compile must pay its warm-up).
DEFAULT_KEEP = frozenset({"channels_last", "device_data", "fused_optimizer"})
DECISIONS_FILE = "auto_decisions.json"
COMPILE_SECONDS = "compile_seconds"  # beside the techniques of a run: its last compile time

Basis = Literal["measured", "prior", "default"]


@dataclasses.dataclass(frozen=True)
class Decision:
    """`decide`'s verdict on one technique from paired step times."""

    kept: bool
    basis: Basis  # measured: the interval settled it; prior / default: it could not
    speedup: float  # median time without / median time with (> 1: the technique is faster)
    low: float  # the RATIO_CONFIDENCE interval of `speedup` from the paired rounds
    high: float
    rounds: int
    reason: str


@dataclasses.dataclass(frozen=True)
class PriorDecision:
    """The decision measured for the same model on this machine before."""

    kept: bool
    speedup: float
    at: str  # ISO 8601 time it was measured


def decide(
    without_s: Sequence[float],
    with_s: Sequence[float],
    *,
    threshold: float = MIN_SPEEDUP,
    prior: PriorDecision | None = None,
    default: bool = False,
) -> Decision:
    """Keep or drop a technique from paired rounds of step times (seconds, round i of both
    timed together): keep if the interval's lower bound clears `threshold`, drop if its
    upper bound is below it; when the interval straddles it, drop if the median ratio is
    below 1 (measured slower: never kept on an earlier decision or a default), else
    `prior`'s decision, else `default`.

    >>> decide([2.0, 2.1, 1.9, 2.0], [1.0, 1.05, 1.0, 0.98]).kept
    True
    >>> decide([1.0, 1.01, 0.99, 1.0], [1.0, 1.0, 1.0, 1.01]).kept
    False
    """
    # the interval holds its point, the ratio of the medians
    low, high = paired_ratio_interval(without_s, with_s)
    speedup = statistics.median(without_s) / statistics.median(with_s)
    figures = f"{speedup:.2f}× step time ({low:.2f}–{high:.2f}, {len(with_s)} rounds)"
    if low >= threshold:
        return Decision(True, "measured", speedup, low, high, len(with_s),
                        f"{figures}: clears {threshold:.2f}×")  # fmt: skip
    if high < threshold:
        return Decision(False, "measured", speedup, low, high, len(with_s),
                        f"no gain: {figures}, below {threshold:.2f}×")  # fmt: skip
    undecided = f"undecided: {figures} straddles {threshold:.2f}×"
    if speedup < 1.0:  # slower here, if not surely: never kept on a prior or a default
        return Decision(False, "measured", speedup, low, high, len(with_s),
                        f"{undecided}; dropped: it measured slower here")  # fmt: skip
    if prior is not None:
        verdict = "kept" if prior.kept else "dropped"
        reason = (
            f"{undecided}; {verdict} as measured before for this model on this machine "
            f"({prior.speedup:.2f}× on {prior.at[:10]})"
        )
        return Decision(prior.kept, "prior", speedup, low, high, len(with_s), reason)
    verdict = "kept" if default else "dropped"
    reason = f"{undecided}; {verdict} by default (no earlier decision on this machine)"
    return Decision(default, "default", speedup, low, high, len(with_s), reason)


class DecisionCache:
    """Measured keep/drop decisions per model and machine, in `path` (JSON).

    A missing or unreadable file is an empty cache; writes are atomic, and a file that
    cannot be written only costs the memory of this run's decisions.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or cache_dir() / DECISIONS_FILE

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) and isinstance(data.get("runs"), dict) else {}

    def get(self, key: str, technique: str) -> PriorDecision | None:
        entry = self._read().get("runs", {}).get(key, {}).get(technique)
        try:
            return PriorDecision(bool(entry["kept"]), float(entry["speedup"]), str(entry["at"]))
        except (KeyError, TypeError, ValueError):
            return None

    def put(self, key: str, technique: str, decision: Decision) -> None:
        data = self._read() or {"kind": "jiasu.auto-decisions", "runs": {}}
        data["runs"].setdefault(key, {})[technique] = {
            "kept": decision.kept,
            "speedup": decision.speedup,
            "interval": [decision.low, decision.high],
            "rounds": decision.rounds,
            "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        self._write(data)

    def compile_seconds(self, key: str) -> float | None:
        """The seconds compiling took for this model on this machine last time, if known."""
        value = self._read().get("runs", {}).get(key, {}).get(COMPILE_SECONDS)
        return float(value) if isinstance(value, int | float) and value >= 0 else None

    def put_compile_seconds(self, key: str, seconds: float) -> None:
        data = self._read() or {"kind": "jiasu.auto-decisions", "runs": {}}
        data["runs"].setdefault(key, {})[COMPILE_SECONDS] = seconds
        self._write(data)

    def _write(self, data: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):  # an unwritable cache must not fail the training
            atomic_write_text(self.path, json.dumps(data, indent=2) + "\n")


def decision_key(
    spec: ModelSpec | ExternalModel, schedule: Sequence[str], batch_size: int, device: torch.device
) -> str:
    """Which earlier decisions apply: the same model, schedule, batch size, device, machine."""
    identity = {
        "model": spec.to_dict(),
        "schedule": list(schedule),
        "batch_size": batch_size,
        "device": str(device),
        "host": socket.gethostname(),
        "cpu": cpu_info().model,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    text = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
