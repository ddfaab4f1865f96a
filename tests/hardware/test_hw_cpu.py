"""CPU description: /proc/cpuinfo parsing, feature flags, and never raising."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from jiasu.hardware import cpu
from jiasu.hardware.cpu import CpuInfo, accel_features, cpu_info, parse_proc_cpuinfo

X86_CPUINFO = """\
processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
physical id\t: 0
core id\t\t: 0
flags\t\t: fpu sse avx2 avx512f avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8

processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8480+
physical id\t: 0
core id\t\t: 0
flags\t\t: fpu sse avx2 avx512f avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8

processor\t: 2
model name\t: Intel(R) Xeon(R) Platinum 8480+
physical id\t: 0
core id\t\t: 1
flags\t\t: fpu sse avx2 avx512f avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8
"""

ARM_CPUINFO = """\
processor\t: 0
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics sve sve2
CPU implementer\t: 0x41
CPU architecture: 8
CPU part\t: 0xd4f
"""


def test_parse_x86_cpuinfo() -> None:
    info = parse_proc_cpuinfo(X86_CPUINFO, logical_cpus=3)
    assert info.model == "Intel(R) Xeon(R) Platinum 8480+"
    assert info.logical_cpus == 3
    assert info.physical_cores == 2  # two distinct (physical id, core id) pairs
    assert {"avx2", "amx_tile", "fpu"} <= info.flags
    features = accel_features(info)
    assert all(
        features[k]
        for k in (
            "avx2",
            "avx512f",
            "avx512_vnni",
            "avx512_bf16",
            "amx_tile",
            "amx_bf16",
            "amx_int8",
        )
    )
    assert not features["neon"] and not features["sve"] and not features["apple_silicon"]


def test_parse_arm_cpuinfo() -> None:
    info = parse_proc_cpuinfo(ARM_CPUINFO, logical_cpus=1)
    features = accel_features(info)
    assert features["neon"] and features["sve"] and features["sve2"]
    assert not features["avx2"] and not features["amx_tile"]
    assert info.physical_cores is None
    assert info.model  # falls back to something non-empty


def test_accel_features_keys_are_stable() -> None:
    empty = accel_features(CpuInfo("x", frozenset(), 1, None))
    full = accel_features(cpu_info())
    assert set(empty) == set(full)
    assert not any(empty.values())
    assert {"avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16"} <= set(empty)
    assert all(isinstance(v, bool) for v in full.values())


def test_macos_spellings_map_to_features() -> None:
    info = CpuInfo("Apple M2", frozenset({"avx512vnni", "amxtile", "neon"}), 8, 8)
    features = accel_features(info)
    assert features["avx512_vnni"] and features["amx_tile"] and features["neon"]
    assert features["apple_silicon"]


@pytest.mark.skipif(not Path("/proc/cpuinfo").exists(), reason="Linux /proc only")
def test_cpu_info_matches_proc_cpuinfo() -> None:
    text = Path("/proc/cpuinfo").read_text()
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            flags = set(value.split())
            break
    info = cpu_info()
    assert info.flags == frozenset(flags)
    assert info.logical_cpus >= 1
    assert info.physical_cores is None or 1 <= info.physical_cores <= info.logical_cpus
    assert accel_features(info)["avx2"] == ("avx2" in flags)


def test_cpu_info_never_raises(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # A directory in place of /proc/cpuinfo makes read_text() raise.
    monkeypatch.setattr(cpu, "_PROC_CPUINFO", tmp_path)
    monkeypatch.setattr(sys, "platform", "linux")
    info = cpu_info()
    assert info.flags == frozenset()
    assert info.model
    assert info.logical_cpus >= 1


def test_darwin_path_uses_sysctl(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = {
        ("sysctl", "-n", "machdep.cpu.brand_string"): "Apple M3 Max",
        ("sysctl", "-n", "hw.physicalcpu"): "12",
        ("sysctl", "hw.optional"): "hw.optional.neon: 1\nhw.optional.arm.FEAT_BF16: 1\n"
        "hw.optional.arm.FEAT_SME: 0\n",
    }

    def fake_run(args: list[str], **_: object) -> SimpleNamespace:
        out = answers.get(tuple(args), "")
        return SimpleNamespace(stdout=out, returncode=0 if out else 1)

    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr(subprocess, "run", fake_run)
    info = cpu_info()
    assert info.model == "Apple M3 Max"
    assert info.physical_cores == 12
    assert {"neon", "feat_bf16"} <= info.flags
    assert "feat_sme" not in info.flags
    assert accel_features(info)["apple_silicon"]
