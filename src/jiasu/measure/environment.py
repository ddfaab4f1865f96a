"""Record the software and hardware a measurement was taken on, as a JSON-able dict.

A speedup number is only meaningful together with where it was measured; every
benchmark report stores `capture_environment()` next to its results.

>>> import json
>>> env = capture_environment("cpu")
>>> env["device"]
'cpu'
>>> _ = json.dumps(env)
"""

from __future__ import annotations

import importlib.metadata
import platform
import socket
import sys
from datetime import datetime, timezone
from typing import Any

import numpy as np
import torch

from jiasu.hardware.cpu import accel_features, cpu_info
from jiasu.hardware.device import resolve_device
from jiasu.hardware.threads import default_threads

# Optional packages whose versions matter to results; looked up, never imported.
OPTIONAL_PACKAGES = ("onnx", "onnxruntime", "openvino", "ray", "pyspark", "torch_xla")


def package_version(name: str) -> str | None:
    """The installed version of distribution `name`, or None, without importing it.

    >>> package_version("numpy") == np.__version__
    True
    >>> package_version("surely-not-installed-xyz") is None
    True
    """
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None
    except Exception:  # broken metadata counts as absent
        return None


def _backend_available(name: str) -> bool | None:
    backend = getattr(torch.backends, name, None)
    if backend is None or not hasattr(backend, "is_available"):
        return None
    try:
        return bool(backend.is_available())
    except Exception:
        return None


def _cuda_details(device: torch.device) -> dict[str, Any]:
    index = device.index if device.index is not None else torch.cuda.current_device()
    props = torch.cuda.get_device_properties(index)
    return {
        "cuda_device_name": props.name,
        "cuda_capability": f"{props.major}.{props.minor}",
        "cuda_memory_gib": round(props.total_memory / 2**30, 2),
        "cuda_device_count": torch.cuda.device_count(),
        "cuda_version": torch.version.cuda,
        "cudnn_version": torch.backends.cudnn.version(),
    }


def capture_environment(device: str | torch.device = "cpu") -> dict[str, Any]:
    """Describe this machine and software stack for `device` ("auto", "cpu", "cuda:0", ...).

    A device given as a string is resolved with `resolve_device`, so an unavailable or
    unknown one raises `ConfigError`.
    """
    if isinstance(device, torch.device):
        dev, reason = device, "given"
    else:
        dev, reason = resolve_device(device)
    info = cpu_info()
    env: dict[str, Any] = {
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "jiasu": package_version("jiasu"),
        "cpu_model": info.model,
        "logical_cpus": info.logical_cpus,
        "physical_cores": info.physical_cores,
        "usable_cpus": default_threads(),
        "cpu_features": accel_features(info),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "device": str(dev),
        "device_reason": reason,
        "mkldnn_available": _backend_available("mkldnn"),
        "mkl_available": _backend_available("mkl"),
        "openmp_available": _backend_available("openmp"),
        "packages": {name: package_version(name) for name in OPTIONAL_PACKAGES},
    }
    if dev.type == "cuda":
        env.update(_cuda_details(dev))
    return env
