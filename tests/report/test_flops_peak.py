"""FLOP counting against hand-counted references; the peak cache; distance to the limit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from torch import nn

from jiasu.core.errors import ConfigError
from jiasu.hardware.peak import Peak, load_peak, measure_peak, peak_cache_path, save_peak
from jiasu.report import Entry, flops_per_sample


def test_linear_flops_match_hand_count() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    forward = 2 * (784 * 128 + 128 * 10)
    assert flops_per_sample(model, (1, 28, 28), training=False) == forward
    # backward: weight gradients of both layers, plus the input gradient of the second
    backward = 2 * (784 * 128 + 128 * 10) + 2 * (128 * 10)
    assert flops_per_sample(model, (1, 28, 28)) == forward + backward


def test_conv_flops_match_hand_count() -> None:
    model = nn.Conv2d(1, 4, kernel_size=3, padding=1, bias=False)
    assert flops_per_sample(model, (1, 8, 8), training=False) == 2 * 8 * 8 * 4 * 9


def test_flops_leave_the_model_untouched() -> None:
    model = nn.Linear(4, 2)
    model.eval()
    flops_per_sample(model, (4,), training=True)
    assert not model.training and model.weight.grad is None


def test_bad_shape_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="input_shape"):
        flops_per_sample(nn.Linear(4, 2), (0,))


def test_peak_cache_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JIASU_CACHE_DIR", str(tmp_path))
    assert peak_cache_path() == tmp_path / "peak.json"
    assert load_peak() is None
    peak = measure_peak(matmul_size=256, copy_mib=8, repeats=3)
    assert peak.matmul_fp32_flops_per_s > 1e8 and peak.memory_bytes_per_s > 1e8
    save_peak(peak)
    assert load_peak() == peak
    (tmp_path / "peak.json").write_text("{broken")
    assert load_peak() is None


def test_entry_share_of_peak_uses_its_precision(peak: Peak) -> None:
    fp32 = Entry("a", samples_per_s=1000.0, flops_per_sample=3e6)
    bf16 = Entry("b", samples_per_s=1000.0, flops_per_sample=3e6, precision="bf16")
    assert fp32.peak_fraction(peak) == pytest.approx(3e9 / 300e9)
    assert bf16.peak_fraction(peak) == pytest.approx(3e9 / 1900e9)
    assert fp32.peak_fraction(None) is None
    assert json.loads(json.dumps(peak.to_dict())) == peak.to_dict()
