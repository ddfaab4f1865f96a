"""The machine we run on: CPU features, thread counts and accelerator devices.

The `threads(n)` context manager is deliberately not re-exported here: a package
attribute named `threads` would shadow the `jiasu.hardware.threads` submodule. Import
it as `from jiasu.hardware.threads import threads`.
"""

from __future__ import annotations

from jiasu.hardware.cpu import CpuInfo, accel_features, cpu_info, parse_proc_cpuinfo
from jiasu.hardware.device import available_devices, resolve_device, sync_fn, synchronize
from jiasu.hardware.threads import default_threads, set_threads

__all__ = [
    "CpuInfo",
    "accel_features",
    "available_devices",
    "cpu_info",
    "default_threads",
    "parse_proc_cpuinfo",
    "resolve_device",
    "set_threads",
    "sync_fn",
    "synchronize",
]
