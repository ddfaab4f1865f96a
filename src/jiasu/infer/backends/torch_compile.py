"""torch.compile (TorchInductor): the model's graph compiled into fused C++/OpenMP kernels.

Numeric rather than exact: Inductor may fuse and reorder reductions. Compilation happens
on the first call of each new input shape; `compile_s` is the time of those first calls,
paid again when a saved artifact is loaded (its graph, read back by `load_torch`, is what
is compiled then).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from jiasu.core.signature import InputSignature
from jiasu.core.technique import Exactness
from jiasu.infer.backends.base import Backend, BuildContext, Built, Candidate, Runner, setting
from jiasu.infer.backends.base import timed as timed_call
from jiasu.infer.backends.registry import BACKENDS
from jiasu.infer.backends.torch_eager import eager_runner, load_torch, save_torch, source_module
from jiasu.train.techniques.compile import ResilientCompiled

MODES = ("default", "max-autotune-no-cudagraphs")


def compiled_runner(module: nn.Module, settings: Mapping[str, Any]) -> Runner:
    mode = setting(settings, "mode", MODES)
    # retried with one compile thread when the machine cannot start compile workers
    return eager_runner(ResilientCompiled(module.eval(), mode))


@BACKENDS.register("compile")
class TorchCompile(Backend):
    name = "compile"
    summary = "torch.compile with TorchInductor: fused, generated CPU kernels"

    def candidates(self, ctx: BuildContext) -> list[Candidate]:
        if ctx.large and self.name not in ctx.named:
            # Compiling a ResNet-50 or a BERT-base takes minutes on a small CPU, and again
            # in the process that times it alone: tried only when named in `backends`.
            return []
        return [Candidate("torch-compile", self.name, {"mode": "default"}, Exactness.NUMERIC)]

    def why_none(self, ctx: BuildContext) -> str:
        return (
            "a large model: compiling it takes minutes here (and again when timed alone); "
            "name compile in --backends to try it"
        )

    def build(self, candidate: Candidate, ctx: BuildContext) -> Built:
        run = compiled_runner(source_module(ctx), candidate.settings)
        example = ctx.signature.generate(ctx.batch_size)
        _, compile_s = timed_call(lambda: run(*example))  # compiles for the measured shape
        return Built(run, 0.0, compile_s, save_torch(ctx))

    def load(
        self,
        directory: Path,
        files: Mapping[str, Any],
        settings: Mapping[str, Any],
        signature: InputSignature,
        *,
        trust_code: bool = False,
    ) -> Runner:
        module = load_torch(directory, files, signature, trust_code=trust_code)
        return compiled_runner(module, settings)
