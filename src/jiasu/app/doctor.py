"""The `jiasu doctor` session: what this machine has, what is missing and how to install it
for this hardware, and which techniques can apply here (and why not).

`diagnose()` only looks and never raises for a missing or broken piece: versions come
from package metadata, and only the inference backends' own availability checks import
their runtimes (a broken install then shows as unusable, with the error).

>>> d = diagnose()
>>> d.cpu["logical_cpus"] >= 1 and any(p.name == "torch" for p in d.packages)
True
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import torch

from jiasu.hardware import doctor as machine
from jiasu.hardware.device import resolve_device
from jiasu.hardware.peak import Peak, measure_peak, peak_quality, save_peak
from jiasu.measure.environment import package_version

TORCH_INDEX = "https://download.pytorch.org/whl"


@dataclasses.dataclass(frozen=True)
class Package:
    """One dependency: installed version (None if missing), what it is for, how to get it."""

    name: str
    version: str | None
    purpose: str
    install: str | None  # the command for this machine; None when nothing is to be done
    note: str = ""


@dataclasses.dataclass(frozen=True)
class TechniqueCheck:
    name: str
    stage: str
    kind: str
    exactness: str
    applies: bool | None  # None: decided per model when the command runs
    reason: str


@dataclasses.dataclass(frozen=True)
class Diagnosis:
    cpu: dict[str, Any]
    memory: dict[str, int | None]
    devices: dict[str, Any]
    packages: tuple[Package, ...]
    techniques: tuple[TechniqueCheck, ...]
    peak: Peak | None
    probe: str  # what the technique checks were made against

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": 1,
            "kind": "jiasu.doctor",
            "cpu": self.cpu,
            "memory": self.memory,
            "devices": self.devices,
            "packages": [dataclasses.asdict(p) for p in self.packages],
            "techniques": [dataclasses.asdict(t) for t in self.techniques],
            "technique_probe": self.probe,
            "peak": self.peak.to_dict() if self.peak else None,
            # how old and noisy the peak is, and why it may be wrong
            "peak_quality": peak_quality(self.peak) if self.peak else None,
        }


def diagnose() -> Diagnosis:
    """Look at this machine and its software; never raises for a missing piece."""
    device, _ = resolve_device("auto")
    techniques, probe = _technique_checks(device)
    from jiasu.models import ModelSpec

    techniques += _backend_checks(ModelSpec("cnn").build())
    found = machine.diagnose()  # through the module: tests replace it there
    return Diagnosis(
        cpu=found.cpu,
        memory=found.memory,
        devices=found.devices,
        packages=_packages(found.devices),
        techniques=techniques,
        peak=found.peak,
        probe=probe,
    )


def measure_and_save_peak() -> Path:
    """Measure this machine's peak rates (seconds) and cache them; return the cache file."""
    return save_peak(measure_peak())


def _torch_install(devices: dict[str, Any]) -> tuple[str | None, str]:
    if devices["nvidia_driver"] and not devices["torch_cuda_build"]:
        return (
            f"pip install --force-reinstall torch --index-url {TORCH_INDEX}/cu128",
            "an NVIDIA driver is present but this torch is a CPU build",
        )
    return None, f"build: {'CUDA ' + devices['torch_cuda_build'] if devices['cuda'] else 'CPU'}"


def _packages(devices: dict[str, Any]) -> tuple[Package, ...]:
    cuda = bool(devices["cuda"])
    has_java = shutil.which("java") is not None
    torch_cmd, torch_note = _torch_install(devices)
    rows: list[tuple[str, str, str | None, str]] = [
        # (distribution, purpose, install command when missing, note)
        (
            "onnxruntime-gpu" if cuda else "onnxruntime",
            "inference backend (jiasu optimize)",
            "pip install onnxruntime-gpu onnx" if cuda else "pip install 'jiasu[onnx]'",
            "",
        ),
        (
            "openvino",
            "inference backend for Intel CPUs and GPUs",
            "pip install 'jiasu[openvino]'",
            "",
        ),
        ("ray", "middleware: Ray Train / Ray Data", "pip install 'jiasu[ray]'", ""),
        (
            "pyspark",
            "middleware: Spark TorchDistributor",
            "pip install 'jiasu[spark]'",
            "" if has_java else "Spark also needs Java 17: apt-get install openjdk-17-jre-headless",
        ),
        ("matplotlib", "plots in HTML reports", "pip install 'jiasu[report]'", ""),
        ("tensorboard", "experiment tracking: TensorBoard", "pip install 'jiasu[track]'", ""),
        ("mlflow-skinny", "experiment tracking: MLflow", "pip install 'jiasu[track]'", ""),
    ]
    packages = [Package("torch", torch.__version__, "PyTorch", torch_cmd, torch_note)]
    for name, purpose, command, note in rows:
        version = package_version(name)
        if name == "mlflow-skinny":
            version = version or package_version("mlflow")
        packages.append(Package(name, version, purpose, None if version else command, note))
    xla_version = package_version("torch_xla")
    if xla_version or devices["tpu_host"]:
        command = None if xla_version else "pip install 'torch_xla[tpu]'"
        packages.append(Package("torch_xla", xla_version, "XLA / TPU devices", command))
    return tuple(packages)


def _technique_checks(device: torch.device) -> tuple[tuple[TechniqueCheck, ...], str]:
    import jiasu.train  # noqa: F401  (registers the training techniques)
    from jiasu.core.errors import ConfigError
    from jiasu.core.technique import TECHNIQUES, build_technique
    from jiasu.models import ModelSpec
    from jiasu.train.setup import TrainSetup, TrainTechnique

    model = ModelSpec("cnn").build()
    setup = TrainSetup(
        model=model,
        device=device,
        batch_size=32,
        lr=1e-3,
        optimizer="adam",
        num_train_samples=48_000,
        epochs=5,
    )
    probe = f"the reference CNN on MNIST, batch 32, Adam, 5 epochs, on {device}"
    checks = []
    for name in TECHNIQUES.names():
        cls = TECHNIQUES.get(name)
        effect = cls.effect
        try:
            technique = build_technique(name)
        except ConfigError as exc:
            applies, reason = None, f"needs parameters to judge ({exc})"
        else:
            if isinstance(technique, TrainTechnique):
                try:
                    answer = technique.applies_to(setup)
                    applies, reason = answer.ok, answer.reason or cls.summary
                except Exception as exc:  # a broken check must not break the doctor
                    applies, reason = None, f"check failed: {type(exc).__name__}: {exc}"
            else:
                applies, reason = None, f"{effect.stage.value} technique: judged per model"
        checks.append(
            TechniqueCheck(
                name,
                effect.stage.value,
                effect.kind.value,
                effect.exactness.value,
                applies,
                reason,
            )
        )
    return tuple(checks), probe


def _backend_checks(model: torch.nn.Module) -> tuple[TechniqueCheck, ...]:
    """Inference backends (jiasu optimize) that can run here, for a torch model."""
    try:
        from jiasu.core.signature import InputSignature
        from jiasu.data.mnist import INPUT_SHAPE
        from jiasu.infer.backends import BACKENDS, ModelSource

        mnist = InputSignature.from_shape(INPUT_SHAPE)
        source = ModelSource("torch", mnist, "reference CNN", module=model)
        checks = []
        for name in BACKENDS.names():
            try:
                answer = BACKENDS.get(name)().available(source)
                applies, reason = answer.ok, answer.reason or BACKENDS.get(name).summary
            except Exception as exc:  # a broken runtime must not break the doctor
                applies, reason = False, f"unusable here: {type(exc).__name__}: {exc}"
            checks.append(TechniqueCheck(name, "inference", "backend", "-", applies, reason))
        return tuple(checks)
    except Exception as exc:  # the inference package itself failed to import
        reason = f"inference backends could not be listed: {type(exc).__name__}: {exc}"
        return (TechniqueCheck("inference backends", "inference", "backend", "-", None, reason),)
