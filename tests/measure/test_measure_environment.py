"""Environment capture."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import torch

from jiasu.core.errors import ConfigError
from jiasu.hardware.device import available_devices
from jiasu.measure.environment import OPTIONAL_PACKAGES, capture_environment, package_version


def test_json_serialisable_with_versions() -> None:
    env = capture_environment()
    assert json.loads(json.dumps(env)) == env
    assert env["torch"] == torch.__version__
    assert env["numpy"] == np.__version__
    assert env["device"] == "cpu"
    assert env["torch_threads"] == torch.get_num_threads()
    assert env["torch_interop_threads"] == torch.get_num_interop_threads()
    assert env["logical_cpus"] >= 1
    assert set(env["packages"]) == set(OPTIONAL_PACKAGES)
    assert isinstance(env["mkldnn_available"], bool)
    stamp = datetime.fromisoformat(env["timestamp"])
    assert stamp.utcoffset() == timedelta(0)


@pytest.mark.skipif(not Path("/proc/cpuinfo").exists(), reason="Linux /proc only")
def test_cpu_flags_from_proc_cpuinfo() -> None:
    text = Path("/proc/cpuinfo").read_text()
    flags = next(
        set(line.partition(":")[2].split())
        for line in text.splitlines()
        if line.partition(":")[0].strip().lower() in ("flags", "features")
    )
    features = capture_environment()["cpu_features"]
    for name in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8"):
        assert features[name] == (name in flags), name


def test_package_version_without_import() -> None:
    assert package_version("numpy") == np.__version__
    assert package_version("definitely-not-a-real-package-jiasu") is None


@pytest.mark.skipif(len(available_devices()) > 1, reason="this machine has an accelerator")
def test_devices_here() -> None:
    env = capture_environment("auto")
    assert env["device"] == "cpu" and env["device_reason"].startswith("auto:")
    assert "cuda_device_name" not in env
    with pytest.raises(ConfigError, match="available devices: cpu"):
        capture_environment("cuda")


def test_accepts_torch_device() -> None:
    assert capture_environment(torch.device("cpu"))["device"] == "cpu"
