"""Device discovery and resolution (CUDA faked where the machine has none)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from jiasu.core.errors import ConfigError
from jiasu.hardware import device as device_mod
from jiasu.hardware.device import available_devices, resolve_device, sync_fn, synchronize

no_accelerator = pytest.mark.skipif(
    len(available_devices()) > 1, reason="this machine has an accelerator"
)


def fake_cuda(monkeypatch: pytest.MonkeyPatch, count: int = 2) -> list[object]:
    synced: list[object] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: f"FakeGPU {i}")
    monkeypatch.setattr(torch.cuda, "synchronize", lambda d=None: synced.append(d))
    return synced


def test_cpu_always_available_and_first() -> None:
    devices = available_devices()
    assert devices[0] == "cpu"
    assert len(devices) == len(set(devices))


@no_accelerator
def test_auto_is_cpu_here_with_reason() -> None:
    dev, reason = resolve_device("auto")
    assert dev == torch.device("cpu")
    assert reason == "auto: no CUDA, MPS or XLA device; using CPU"


@no_accelerator
@pytest.mark.parametrize("spec", ["cuda", "cuda:0", "mps", "xla"])
def test_unavailable_device_lists_available(spec: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_device(spec)
    message = str(info.value)
    assert repr(spec) in message and "available devices: cpu" in message


@pytest.mark.parametrize("spec", ["gpu", "cuda:x", "tpu", ""])
def test_unknown_spec_lists_allowed(spec: str) -> None:
    with pytest.raises(ConfigError, match=r"unknown; use one of: auto, cpu, cuda, cuda:N"):
        resolve_device(spec)


def test_explicit_cpu_case_insensitive() -> None:
    assert resolve_device(" CPU ") == (torch.device("cpu"), "requested cpu")


def test_fake_cuda_auto_and_indices(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_cuda(monkeypatch, count=2)
    assert available_devices()[:3] == ["cpu", "cuda:0", "cuda:1"]
    dev, reason = resolve_device("auto")
    assert dev == torch.device("cuda", 0)
    assert reason == "auto: CUDA device FakeGPU 0 found"
    assert resolve_device("cuda")[0] == torch.device("cuda", 0)
    assert resolve_device("cuda:1")[0] == torch.device("cuda", 1)
    with pytest.raises(ConfigError, match=r"'cuda:2' is not available.*cuda:1"):
        resolve_device("cuda:2")


def test_fake_xla_is_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = SimpleNamespace(xla_device=lambda: "xla:0", mark_step=lambda: None)
    monkeypatch.setattr(device_mod, "_xla_model", lambda: fake)
    assert "xla" in available_devices()
    dev, reason = resolve_device("xla")
    assert dev.type == "xla" and reason == "requested xla"


def test_synchronize_dispatch(monkeypatch: pytest.MonkeyPatch) -> None:
    synced = fake_cuda(monkeypatch)
    synchronize("cpu")
    assert synced == []
    synchronize("cuda:1")
    assert synced == [torch.device("cuda", 1)]
    fn = sync_fn(torch.device("cuda", 0))
    assert fn is not None
    fn()
    assert synced[-1] == torch.device("cuda", 0)
    assert sync_fn("cpu") is None
