"""Graph compilation with torch.compile (and CUDA graphs through mode 'reduce-overhead')."""

from __future__ import annotations

import dataclasses
import errno
import logging
from typing import Any

import torch
from torch import nn

from jiasu.core.errors import ConfigError
from jiasu.core.technique import Applicability, Effect, Exactness, Kind, Stage, register_technique
from jiasu.train.setup import TrainSetup, TrainTechnique

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
_log = logging.getLogger(__name__)


def out_of_processes(exc: BaseException) -> bool:
    """Whether `exc`, or an error it wraps, says the machine could not start a process or thread.

    Inductor compiles kernels on `compile_threads` threads (this machine's CPUs, at most 32)
    and runs the C++ compiler in subprocesses; on a machine short of processes those fail
    with EAGAIN ("Resource temporarily unavailable") or "can't start new thread".

    >>> out_of_processes(BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable"))
    True
    >>> out_of_processes(RuntimeError("wrapped")) or out_of_processes(ValueError("no"))
    False
    """
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        error = pending.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in (errno.EAGAIN, errno.ENOMEM):
            return True
        if isinstance(error, RuntimeError) and "can't start new thread" in str(error):
            return True
        pending += [error.__cause__, error.__context__, getattr(error, "inner_exception", None)]
    return False


def use_one_compile_thread() -> None:
    """Compile Inductor's kernels one after another in this process: no compile workers."""
    import torch._inductor.config as inductor_config

    inductor_config.compile_threads = 1


class ResilientCompiled(nn.Module):
    """``torch.compile(module, mode=mode)`` that degrades instead of failing on a busy machine.

    If a compilation fails because no process or thread could be started, it is tried
    once more with one compile thread (`use_one_compile_thread`), which starts no
    compile workers and one compiler subprocess at a time. A second failure is raised.
    """

    def __init__(self, module: nn.Module, mode: str | None = None) -> None:
        super().__init__()
        self.mode = mode
        self.compiled = torch.compile(module, mode=mode)
        self.degraded = False

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return self.compiled(*args, **kwargs)
        except Exception as exc:
            if self.degraded or not out_of_processes(exc):
                raise
            _log.warning("torch.compile could not start compile workers (%s); retrying "
                         "with one compile thread", exc)  # fmt: skip
            self.degraded = True
            use_one_compile_thread()
            torch._dynamo.reset()  # forget the failed attempt
            return self.compiled(*args, **kwargs)


@register_technique
@dataclasses.dataclass(frozen=True)
class Compile(TrainTechnique):
    """Compile the model with torch.compile (TorchInductor): fused kernels, less Python.

    Costs a compilation before the first step (seconds to tens of seconds on a CPU),
    which `fit` measures separately as ``compile_seconds``; it pays only when the
    steps saved outweigh it. Fused kernels reorder floating-point work: numeric.
    """

    name = "compile"
    effect = Effect(Stage.TRAIN, Kind.SOFTWARE, Exactness.NUMERIC)
    summary = "torch.compile (Inductor) of the model; compile time reported separately"
    plain_function = "torch.compile(model, mode=...)"
    conflicts_with = frozenset({"cuda_graphs"})

    mode: str = "default"

    def __post_init__(self) -> None:
        if self.mode not in COMPILE_MODES:
            raise ConfigError(
                f"technique 'compile': mode must be one of {', '.join(COMPILE_MODES)}, "
                f"got {self.mode!r}"
            )

    def applies_to(self, setup: TrainSetup) -> Applicability:
        if setup.device.type not in ("cpu", "cuda"):
            return Applicability.no(f"torch.compile's Inductor does not target {setup.device.type}")
        return Applicability.yes()

    def configure(self, setup: TrainSetup) -> TrainSetup:
        return dataclasses.replace(setup, compile_mode=self.mode)


@register_technique
@dataclasses.dataclass(frozen=True)
class CudaGraphs(TrainTechnique):
    """Capture the training step in CUDA graphs (torch.compile mode 'reduce-overhead').

    Removes per-kernel launch overhead, which dominates small models on fast GPUs.
    """

    name = "cuda_graphs"
    effect = Effect(Stage.TRAIN, Kind.HARDWARE, Exactness.NUMERIC)
    summary = "CUDA graphs through torch.compile(mode='reduce-overhead')"
    plain_function = "torch.compile(model, mode='reduce-overhead')"
    conflicts_with = frozenset({"compile"})

    def applies_to(self, setup: TrainSetup) -> Applicability:
        if setup.device.type != "cuda":
            return Applicability.no(
                f"CUDA graphs need a CUDA device; this run is on {setup.device.type}"
            )
        return Applicability.yes()

    def configure(self, setup: TrainSetup) -> TrainSetup:
        return dataclasses.replace(setup, compile_mode="reduce-overhead")
