"""What this machine has: CPU and its features, memory, accelerators, the measured peak.

`diagnose()` only looks and never raises for a missing piece. The rest of `jiasu doctor`
(software with install commands, the techniques that apply here) is the doctor session in
`jiasu.app.doctor`, which builds on this.

>>> machine = diagnose()
>>> machine.cpu["logical_cpus"] >= 1 and machine.memory["total_bytes"] is not None
True
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import platform
import shutil
from pathlib import Path
from typing import Any

import torch

from jiasu.hardware.cpu import accel_features, cpu_info
from jiasu.hardware.device import available_devices
from jiasu.hardware.peak import Peak, load_peak
from jiasu.hardware.threads import default_threads

CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")


@dataclasses.dataclass(frozen=True)
class Machine:
    """This machine as `jiasu doctor` shows it (plain values, JSON-ready but the peak)."""

    cpu: dict[str, Any]
    memory: dict[str, int | None]
    devices: dict[str, Any]
    peak: Peak | None  # measured by `jiasu doctor --measure`; None before


def _cpu() -> dict[str, Any]:
    info = cpu_info()
    features = accel_features(info)
    return {
        "model": info.model,
        "machine": platform.machine(),
        "flags": {f: features.get(f, False) for f in CPU_FLAGS},
        "other_features": sorted(k for k, v in features.items() if v and k not in CPU_FLAGS),
        "logical_cpus": info.logical_cpus,
        "physical_cores": info.physical_cores,
        "usable_cpus": default_threads(),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
    }


def _meminfo(text: str, key: str) -> int | None:
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return None


def _memory() -> dict[str, int | None]:
    total = available = limit = None
    try:
        text = Path("/proc/meminfo").read_text()
        total, available = _meminfo(text, "MemTotal"), _meminfo(text, "MemAvailable")
    except OSError:
        with contextlib.suppress(ValueError, OSError, AttributeError):
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    with contextlib.suppress(OSError):
        raw = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        limit = int(raw) if raw.isdigit() else None
    return {"total_bytes": total, "available_bytes": available, "cgroup_limit_bytes": limit}


def _nvidia_driver() -> bool:
    return Path("/proc/driver/nvidia/version").exists() or shutil.which("nvidia-smi") is not None


def _devices() -> dict[str, Any]:
    cuda = []
    for spec in available_devices():
        if spec.startswith("cuda:"):
            props = torch.cuda.get_device_properties(int(spec.split(":")[1]))
            cuda.append(
                {
                    "device": spec,
                    "name": props.name,
                    "capability": f"{props.major}.{props.minor}",
                    "memory_bytes": props.total_memory,
                }
            )
    devices = available_devices()
    return {
        "available": devices,
        "cuda": cuda,
        "torch_cuda_build": torch.version.cuda,
        "nvidia_driver": _nvidia_driver(),
        "mps": "mps" in devices,
        "xla": "xla" in devices,
        "tpu_host": bool(os.environ.get("TPU_NAME") or Path("/dev/accel0").exists()),
    }


def diagnose() -> Machine:
    """Look at this machine; never raises for a missing piece."""
    return Machine(cpu=_cpu(), memory=_memory(), devices=_devices(), peak=load_peak())
