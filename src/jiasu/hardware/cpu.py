"""What CPU are we on, and which of its vector/matrix features matter for PyTorch.

`cpu_info()` reads `/proc/cpuinfo` on Linux and `sysctl` on macOS, and falls back to
`platform.processor()` elsewhere. It never raises: on an unknown system you get a
`CpuInfo` with an empty flag set rather than an exception.

>>> info = cpu_info()
>>> info.logical_cpus >= 1
True
>>> sorted(accel_features(info))[:3]
['amx_bf16', 'amx_int8', 'amx_tile']
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

_PROC_CPUINFO = Path("/proc/cpuinfo")

# Feature name -> flag spellings that mean it. Linux spells x86 flags in lower case with
# underscores (`avx512_vnni`); macOS sysctl spells them in upper case without
# (`AVX512VNNI`), and we lower-case everything on the way in.
_FEATURE_ALIASES: dict[str, tuple[str, ...]] = {
    "avx2": ("avx2",),
    "avx512f": ("avx512f",),
    "avx512_vnni": ("avx512_vnni", "avx512vnni"),
    "avx512_bf16": ("avx512_bf16", "avx512bf16"),
    "amx_tile": ("amx_tile", "amxtile"),
    "amx_bf16": ("amx_bf16", "amxbf16"),
    "amx_int8": ("amx_int8", "amxint8"),
    # Arm: Linux/aarch64 says `asimd`, 32-bit Arm says `neon`, macOS says `neon`.
    "neon": ("neon", "asimd", "adv_simd", "advsimd"),
    "sve": ("sve",),
    "sve2": ("sve2",),
}


@dataclass(frozen=True)
class CpuInfo:
    """A description of the host CPU.

    `flags` are lower-cased feature names as the OS reports them (`avx2`, `amx_tile`,
    `asimd`, ...). `physical_cores` is None when the OS does not say.
    """

    model: str
    flags: frozenset[str]
    logical_cpus: int
    physical_cores: int | None


def cpu_info() -> CpuInfo:
    """Describe the host CPU; never raises.

    >>> cpu_info().model != ""
    True
    """
    logical = os.cpu_count() or 1
    try:
        if sys.platform.startswith("linux") and _PROC_CPUINFO.exists():
            return _parse_proc_cpuinfo(_PROC_CPUINFO.read_text(errors="replace"), logical)
        if sys.platform == "darwin":
            return _darwin_cpu_info(logical)
    except Exception:  # describing the CPU must never break a run
        pass
    return CpuInfo(
        model=_fallback_model(),
        flags=frozenset(),
        logical_cpus=logical,
        physical_cores=None,
    )


def accel_features(info: CpuInfo | None = None) -> dict[str, bool]:
    """Which acceleration-relevant CPU features `info` (default: this CPU) has.

    Keys are always the same, whatever the architecture: avx2, avx512f, avx512_vnni,
    avx512_bf16, amx_tile, amx_bf16, amx_int8, neon, sve, sve2, apple_silicon.

    >>> info = CpuInfo("test", frozenset({"avx2", "amx_tile"}), 4, 2)
    >>> feats = accel_features(info)
    >>> feats["avx2"], feats["amx_tile"], feats["avx512f"]
    (True, True, False)
    """
    if info is None:
        info = cpu_info()
    flags = {f.lower() for f in info.flags}
    features = {
        name: any(alias in flags for alias in aliases) for name, aliases in _FEATURE_ALIASES.items()
    }
    features["apple_silicon"] = info.model.lower().startswith("apple")
    return features


def parse_proc_cpuinfo(text: str, logical_cpus: int | None = None) -> CpuInfo:
    """Parse the text of Linux `/proc/cpuinfo` (public for tests and offline use).

    >>> text = "processor\\t: 0\\nmodel name\\t: Test CPU\\nflags\\t: fpu avx2\\n"
    >>> parse_proc_cpuinfo(text, 1).flags == frozenset({"fpu", "avx2"})
    True
    """
    return _parse_proc_cpuinfo(text, logical_cpus or os.cpu_count() or 1)


def _parse_proc_cpuinfo(text: str, logical: int) -> CpuInfo:
    model = ""
    flags: set[str] = set()
    processors = 0
    cores: set[tuple[str, str]] = set()
    physical_id = "0"
    arm_fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip().lower()
        value = value.strip()
        if key == "processor":
            processors += 1
        elif key == "model name" and not model:
            model = value
        elif key in ("flags", "features") and not flags:
            # x86 says "flags", Arm says "Features".
            flags.update(v.lower() for v in value.split())
        elif key == "physical id":
            physical_id = value
        elif key == "core id":
            cores.add((physical_id, value))
        elif key in ("hardware", "cpu implementer", "cpu part", "cpu architecture"):
            arm_fields.setdefault(key, value)
    if not model:
        model = arm_fields.get("hardware", "") or _fallback_model()
    if logical < 1:
        logical = processors or 1
    return CpuInfo(
        model=model,
        flags=frozenset(flags),
        logical_cpus=logical,
        physical_cores=len(cores) or None,
    )


def _sysctl(name: str) -> str | None:
    try:
        out = subprocess.run(
            ["sysctl", "-n", name], capture_output=True, text=True, timeout=2, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    value = out.stdout.strip()
    return value if out.returncode == 0 and value else None


def _darwin_cpu_info(logical: int) -> CpuInfo:
    model = _sysctl("machdep.cpu.brand_string") or _fallback_model()
    flags: set[str] = set()
    for name in ("machdep.cpu.features", "machdep.cpu.leaf7_features"):
        value = _sysctl(name)
        if value:
            flags.update(v.lower().replace(".", "_") for v in value.split())
    # Apple silicon: `sysctl hw.optional` lists `hw.optional.neon: 1`,
    # `hw.optional.arm.FEAT_BF16: 1`, ...; keep the last component of the set ones.
    try:
        out = subprocess.run(
            ["sysctl", "hw.optional"], capture_output=True, text=True, timeout=2, check=False
        )
        for line in out.stdout.splitlines():
            key, sep, value = line.partition(":")
            if sep and value.strip() == "1":
                flags.add(key.strip().rsplit(".", 1)[-1].lower())
    except (OSError, subprocess.SubprocessError):
        pass
    physical_text = _sysctl("hw.physicalcpu")
    physical = int(physical_text) if physical_text and physical_text.isdigit() else None
    return CpuInfo(
        model=model, flags=frozenset(flags), logical_cpus=logical, physical_cores=physical
    )


def _fallback_model() -> str:
    try:
        return platform.processor() or platform.machine() or "unknown"
    except Exception:
        return "unknown"
