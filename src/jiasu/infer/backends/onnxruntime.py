"""ONNX Runtime on the CPU: fp32 with all graph optimizations, and int8 (dynamic, static QDQ).

The model is exported once to ONNX with a dynamic batch (`jiasu.infer.export`); each
candidate opens its own session with graph optimization level "all" (constant folding,
Conv+activation fusion, layout transforms) and a fixed number of intra-op threads.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from jiasu.core.atomic import atomic_write_bytes
from jiasu.core.errors import ConfigError
from jiasu.core.extras import require
from jiasu.core.signature import InputSignature
from jiasu.core.technique import Exactness
from jiasu.infer import quantize
from jiasu.infer.backends.base import (
    Backend,
    BuildContext,
    Built,
    Candidate,
    Runner,
    artifact_file,
    setting,
    split_batch_runner,
    timed,
)
from jiasu.infer.backends.registry import BACKENDS

MODEL_FILE = "model.onnx"
OPT_LEVELS = ("all", "extended", "basic", "disable")


def _ort() -> Any:
    return require("onnxruntime", extra="onnx", purpose="the onnxruntime backend")


def open_session(path: Path, settings: Mapping[str, Any]) -> Any:
    """An ONNX Runtime CPU session for `path` configured by `settings`."""
    ort = _ort()
    levels = {
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    }
    options = ort.SessionOptions()
    options.graph_optimization_level = levels[setting(settings, "graph_optimization", OPT_LEVELS)]
    options.intra_op_num_threads = int(settings.get("threads", 1))
    options.inter_op_num_threads = 1  # one graph, run sequentially: no inter-op parallelism
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only; warnings about unused initializers are noise
    # Idle pool threads sleep instead of spinning, so they do not steal the cores from
    # whatever runs next (another model, or the next candidate in an interleaved benchmark).
    spin = "1" if settings.get("spinning", False) else "0"
    options.add_session_config_entry("session.intra_op.allow_spinning", spin)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def session_runner(session: Any, parallel: int = 1) -> Runner:
    """Run `session` on a batch; with `parallel` > 1, split the batch into that many parts
    run at once from as many Python threads (ONNX Runtime releases the GIL while it runs).

    For a large batch of a small model, single-threaded runs side by side beat one run
    whose operators are each spread over the threads: on the small CNN at batch 256, two
    1-thread runs took 1.52 ms against 1.98 ms for one 2-thread run
    (benchmarks/infer_runtime_settings.py).
    """
    input_names = [i.name for i in session.get_inputs()]  # fed in the signature's order
    output_name = session.get_outputs()[0].name

    def run(*batch: np.ndarray) -> np.ndarray:
        feed = dict(zip(input_names, batch, strict=True))
        return np.asarray(session.run([output_name], feed)[0], dtype=np.float32)  # (B, ...)

    if parallel > 1:
        return split_batch_runner(run, parallel)
    if len(input_names) == 1 and session.get_inputs()[0].type == "tensor(float)":
        return _small_batches_bound(session, input_names[0], output_name, run)
    return run


SMALL_BATCH = 16  # up to this many rows, inputs are copied into a buffer bound once


def _small_batches_bound(session: Any, input_name: str, output_name: str, run: Runner) -> Runner:
    """`run`, except that small batches go through an I/O binding made once per batch size.

    `session.run` converts its inputs and allocates its outputs on every call; with the
    buffers bound once, a call is a copy in, the run and a copy out. For the founding MLP
    at batch 1 that is 7.7 µs instead of 9.0 µs (benchmarks/infer_runtime_settings.py).
    Buffers are per thread, so the runner
    stays safe to call from several threads, as `session.run` is.
    """
    local = threading.local()

    def bound(batch: np.ndarray) -> np.ndarray:
        rows = batch.shape[0]
        if rows > SMALL_BATCH:
            return run(batch)
        cache: dict[int, tuple[Any, np.ndarray, np.ndarray]] | None = getattr(local, "cache", None)
        if cache is None:
            cache = local.cache = {}
        entry = cache.get(rows)
        if entry is None:
            entry = cache[rows] = _binding(session, input_name, output_name, batch, run)
        binding, inputs, outputs = entry
        np.copyto(inputs, batch)
        session.run_with_iobinding(binding)
        return outputs.copy()  # the buffer is reused by the next call

    return bound


def _binding(
    session: Any, input_name: str, output_name: str, batch: np.ndarray, run: Runner
) -> tuple[Any, np.ndarray, np.ndarray]:
    inputs = np.empty(batch.shape, dtype=np.float32)
    outputs = np.empty(run(batch).shape, dtype=np.float32)  # (B, classes)
    binding = session.io_binding()
    binding.bind_cpu_input(input_name, inputs)
    binding.bind_output(output_name, "cpu", 0, np.float32, list(outputs.shape), outputs.ctypes.data)
    return binding, inputs, outputs


def input_names(path: Path) -> list[str]:
    """The names of an ONNX file's inputs (not its initializers), in order."""
    onnx = require("onnx", extra="onnx", purpose="int8 quantization")
    model = onnx.load(str(path), load_external_data=False)
    initializers = {i.name for i in model.graph.initializer}
    return [i.name for i in model.graph.input if i.name not in initializers]


def prepare_model(candidate: Candidate, ctx: BuildContext) -> Path:
    """The ONNX file the candidate runs: the shared export, or a quantized copy of it."""
    fp32, _ = ctx.onnx_file()
    mode = setting(candidate.settings, "quantization", ("none", "dynamic", "static"))
    if mode == "none":
        return fp32
    out = ctx.workdir / f"{candidate.name}.onnx"
    pre = ctx.workdir / "model.pre.onnx"  # shared by every int8 candidate of the run
    pre = pre if pre.is_file() else quantize.preprocess(fp32, pre)
    if mode == "dynamic":
        return quantize.quantize_dynamic(pre, out)
    return quantize.quantize_static(
        pre,
        out,
        dict(zip(input_names(pre), ctx.needs_calibration(), strict=True)),
        method=setting(candidate.settings, "calibration", quantize.CALIBRATIONS),
        per_channel=bool(candidate.settings.get("per_channel", True)),
    )


STATIC_ON_ATTENTION = (
    "not built: ONNX Runtime advises dynamic, not static, int8 for transformer models "
    "(static QDQ ran BERT-base slower than fp32 here); name --backends onnxruntime to try it"
)


@BACKENDS.register("onnxruntime")
class OnnxRuntime(Backend):
    name = "onnxruntime"
    summary = "ONNX Runtime CPU: fp32 graph-optimized, int8 dynamic and static (QDQ)"
    module = "onnxruntime"
    extra = "onnx"
    sources = frozenset({"torch", "onnx"})

    def candidates(self, ctx: BuildContext) -> list[Candidate]:
        n = ctx.threads
        fp32 = {
            "graph_optimization": "all",
            "threads": n,
            "quantization": "none",
            "precision": "fp32",
        }
        out = []
        if ctx.source.kind == "onnx":  # the file as given, unoptimized: the baseline
            reference = {**fp32, "graph_optimization": "disable"}
            out.append(Candidate("onnxruntime-reference", self.name, reference, Exactness.EXACT))
        out.append(Candidate("onnxruntime", self.name, fp32, Exactness.NUMERIC))
        if n > 1 and (not ctx.large or ctx.batch_size == 1):
            # Pool threads that spin between calls answer faster but keep a core busy
            # after each call. At batch 1 a large model's call is a long chain of small
            # parallel operators, each waking the pool: ONNX Runtime's defaults (spinning)
            # ran ResNet-50 at 2.03x eager there by hand, jiasu's sleeping pool at 1.93x.
            spin = {**fp32, "spinning": True}
            same = "onnxruntime"  # the same kernels on the same threads: the same outputs
            out.append(
                Candidate(
                    "onnxruntime-spin", self.name, spin, Exactness.NUMERIC, same_outputs_as=same
                )
            )
        if n > 1 and not ctx.large:
            # one thread avoids the pool altogether (tiny batches)
            one = {**fp32, "threads": 1}
            out.append(Candidate("onnxruntime-1thread", self.name, one, Exactness.NUMERIC))
            if ctx.batch_size > 1:  # the batch split over n single-threaded runs at once
                split = {**fp32, "threads": 1, "parallel": n}
                out.append(Candidate("onnxruntime-parallel", self.name, split, Exactness.NUMERIC))
        dynamic = {**fp32, "quantization": "dynamic", "precision": "int8"}
        out.append(Candidate("onnxruntime-int8-dynamic", self.name, dynamic, Exactness.APPROXIMATE))
        if ctx.calibration is None:  # static int8 calibrates on the user's data only
            return out
        # ONNX Runtime's own guidance: dynamic quantization for transformers, static for
        # CNNs; measured here, static QDQ ran BERT-base at 0.67x eager (dynamic 2.16x)
        # after minutes of calibration.
        skip = STATIC_ON_ATTENTION if ctx.attention and "onnxruntime" not in ctx.named else None
        for method in quantize.CALIBRATIONS[:1] if ctx.large else quantize.CALIBRATIONS:
            static = {
                **fp32, "quantization": "static", "calibration": method, "per_channel": True,
                "precision": "int8",
            }  # fmt: skip
            name = f"onnxruntime-int8-static-{method}"
            out.append(Candidate(name, self.name, static, Exactness.APPROXIMATE, skip=skip))
        return out

    def build(self, candidate: Candidate, ctx: BuildContext) -> Built:
        _, export_s = ctx.onnx_file()
        path, quantize_s = timed(lambda: prepare_model(candidate, ctx))
        session, session_s = timed(lambda: open_session(path, candidate.settings))

        def save(directory: Path) -> dict[str, Any]:
            return save_onnx(path, directory)

        runner = session_runner(session, _parallel(candidate.settings))
        return Built(runner, export_s + quantize_s, session_s, save)

    def shared_cpu(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        # A spinning pool busy-waits between calls on the cores the server's event loops
        # need: the MNIST CNN (onnxruntime-spin) behind `jiasu serve --workers 2` answered
        # 4,329 and 4,471 req/s at 64 clients spinning, 7,224 and 6,867 with sleeping pools
        # (wrk on loopback, A/B twice); one client's p50 0.25-0.40 against 0.37-0.40 ms.
        return {**settings, "spinning": False}

    def load(
        self,
        directory: Path,
        files: Mapping[str, Any],
        settings: Mapping[str, Any],
        signature: InputSignature,
        *,
        trust_code: bool = False,
    ) -> Runner:
        session = open_session(artifact_file(directory, files, "model"), settings)
        return session_runner(session, _parallel(settings))


EXTERNAL_FILE = "model.onnx.data"
_EMBED_LIMIT = 1 << 30  # bytes of weights kept inside model.onnx (protobuf stops at 2 GiB)


def save_onnx(source: Path, directory: Path) -> dict[str, Any]:
    """Copy the ONNX model `source` into `directory` with all its weights: a model whose
    weights lie in external data files beside it gets them embedded (or, past 1 GiB, in
    one file inside the artifact), so the artifact runs after the source is gone."""
    onnx = require("onnx", extra="onnx", purpose="saving an ONNX artifact")
    from onnx.external_data_helper import uses_external_data

    model = onnx.load(str(source), load_external_data=False)
    if not any(uses_external_data(t) for t in _initializers(model)):
        atomic_write_bytes(directory / MODEL_FILE, source.read_bytes())
        return {"model": MODEL_FILE}
    # onnx reads the data relative to the source's folder and refuses locations outside it.
    onnx.load_external_data_for_model(model, str(source.parent))
    large = sum(len(t.raw_data) for t in _initializers(model)) > _EMBED_LIMIT
    onnx.save_model(
        model, str(directory / MODEL_FILE), save_as_external_data=large,
        all_tensors_to_one_file=True, location=EXTERNAL_FILE,
    )  # fmt: skip
    return {"model": MODEL_FILE, **({"data": EXTERNAL_FILE} if large else {})}


def _initializers(model: Any) -> list[Any]:
    """Every tensor stored in the model: initializers, and tensors in node attributes."""
    from onnx.external_data_helper import _get_all_tensors

    return list(_get_all_tensors(model))


def _parallel(settings: Mapping[str, Any]) -> int:
    value = settings.get("parallel", 1)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 256:
        raise ConfigError(f"setting parallel={value!r} is invalid; use a whole number 1-256")
    return value
