"""Which accelerators are present, choosing one from a user's spec, and waiting for it.

Specs are "auto", "cpu", "cuda", "cuda:N", "mps" or "xla". `torch_xla` is imported
only when asked about and only if installed; a broken install counts as absent.

>>> device, reason = resolve_device("cpu")
>>> device.type, reason
('cpu', 'requested cpu')
>>> "cpu" in available_devices()
True
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from collections.abc import Callable
from types import ModuleType

import torch

from jiasu.core.errors import ConfigError

ALLOWED_SPECS = ("auto", "cpu", "cuda", "cuda:N", "mps", "xla")
_CUDA_INDEX = re.compile(r"^cuda:(\d+)$")


def _cuda_count() -> int:
    try:
        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # a broken driver means no CUDA
        return 0


def _mps_available() -> bool:
    try:
        mps = getattr(torch.backends, "mps", None)
        return bool(mps is not None and mps.is_available())
    except Exception:
        return False


def _xla_model() -> ModuleType | None:
    """`torch_xla.core.xla_model`, or None when torch_xla is absent or fails to import."""
    try:
        if importlib.util.find_spec("torch_xla") is None:
            return None
        return importlib.import_module("torch_xla.core.xla_model")
    except Exception:  # a broken torch_xla means no XLA
        return None


def available_devices() -> list[str]:
    """Devices usable here, CPU first: e.g. ["cpu", "cuda:0", "cuda:1"] or ["cpu", "mps"]."""
    devices = ["cpu"]
    devices.extend(f"cuda:{i}" for i in range(_cuda_count()))
    if _mps_available():
        devices.append("mps")
    if _xla_model() is not None:
        devices.append("xla")
    return devices


def _unavailable(spec: str) -> ConfigError:
    listed = ", ".join(available_devices())
    return ConfigError(f"device {spec!r} is not available here; available devices: {listed}")


def resolve_device(spec: str = "auto") -> tuple[torch.device, str]:
    """Turn a device spec into a `torch.device` plus a human-readable reason for the choice.

    "auto" prefers CUDA, then MPS, then XLA, then CPU. An explicit device that is not
    present raises `ConfigError` listing the ones that are.
    """
    if not isinstance(spec, str):
        raise ConfigError(
            f"device {spec!r} is not a string; use one of: {', '.join(ALLOWED_SPECS)}"
        )
    key = spec.strip().lower()
    if key == "auto":
        return _resolve_auto()
    if key == "cpu":
        return torch.device("cpu"), "requested cpu"
    if key == "cuda" or _CUDA_INDEX.match(key):
        index = 0 if key == "cuda" else int(key.split(":", 1)[1])
        if index >= _cuda_count():
            raise _unavailable(spec)
        name = torch.cuda.get_device_name(index)
        return torch.device("cuda", index), f"requested cuda:{index} ({name})"
    if key == "mps":
        if not _mps_available():
            raise _unavailable(spec)
        return torch.device("mps"), "requested mps"
    if key == "xla":
        xm = _xla_model()
        if xm is None:
            raise _unavailable(spec)
        return _xla_device(xm), "requested xla"
    raise ConfigError(f"device {spec!r} is unknown; use one of: {', '.join(ALLOWED_SPECS)}")


def _xla_device(xm: ModuleType) -> torch.device:
    try:
        return torch.device(xm.xla_device())
    except Exception as exc:
        raise ConfigError(f"device 'xla' could not be opened by torch_xla: {exc}") from exc


def _resolve_auto() -> tuple[torch.device, str]:
    if _cuda_count() > 0:
        name = torch.cuda.get_device_name(0)
        return torch.device("cuda", 0), f"auto: CUDA device {name} found"
    if _mps_available():
        return torch.device("mps"), "auto: Apple MPS device found"
    xm = _xla_model()
    if xm is not None:
        try:
            return torch.device(xm.xla_device()), "auto: XLA device found"
        except Exception:  # fall through to CPU
            pass
    return torch.device("cpu"), "auto: no CUDA, MPS or XLA device; using CPU"


def synchronize(device: torch.device | str) -> None:
    """Wait until all queued work on `device` has finished (a no-op for CPU).

    >>> synchronize("cpu")
    """
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    elif dev.type == "mps":
        torch.mps.synchronize()
    elif dev.type == "xla":
        xm = _xla_model()
        if xm is not None:
            xm.mark_step()
            xm.wait_device_ops()


def sync_fn(device: torch.device | str) -> Callable[[], None] | None:
    """A zero-argument sync for `measure(..., sync=...)`, or None when none is needed (CPU).

    >>> sync_fn("cpu") is None
    True
    """
    dev = torch.device(device)
    if dev.type == "cpu":
        return None
    return lambda: synchronize(dev)
