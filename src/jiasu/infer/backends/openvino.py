"""OpenVINO on the CPU: its default precision, explicit fp32, and int8 through NNCF.

OpenVINO reads the shared ONNX export. On CPUs with bf16 support (AVX512_BF16 or AMX)
its default inference precision is bf16, which makes the default candidate approximate;
the ``precision="f32"`` candidate pins fp32 and is numeric. The performance hint
(LATENCY or THROUGHPUT) follows the run's target.

Where one request runs the whole batch (no split over streams), the model is also compiled
for the run's batch size as a static shape (``static_batch``): BERT-base int8 at batch 1,
[1,128] static against [?,128] and [?,?], 34.6 against 37.1 and 36.7 ms; bf16 61.7 against
62.9 and 63.6 ms (benchmarks/openvino_static_shape.py, 40 interleaved calls each). Other
batch sizes run on the same model compiled with a dynamic batch axis, compiled at their
first call.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

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
    timed,
)
from jiasu.infer.backends.registry import BACKENDS

MODEL_FILE = "model.xml"  # OpenVINO IR; the weights go beside it in model.bin
PRECISIONS = ("default", "f32")
HINTS = ("LATENCY", "THROUGHPUT")
# The first call at a new shape runs a split batch's parts one after another (see
# `_queue_runner`); False only to check whether an OpenVINO release still needs it
# (benchmarks/openvino_batch_check.py --first-call-at-once).
FIRST_CALL_ALONE = True


def _ov() -> Any:
    return require("openvino", extra="openvino", purpose="the openvino backend")


def default_precision() -> str:
    """What OpenVINO's CPU plugin runs by default here: "bf16" (AVX512_BF16 or AMX) or "f32"."""
    hint = _ov().Core().get_property("CPU", "INFERENCE_PRECISION_HINT")
    return str(hint.get_type_name())


def compile_model(model: Any, settings: Mapping[str, Any]) -> Any:
    config: dict[str, Any] = {
        "PERFORMANCE_HINT": setting(settings, "hint", HINTS),
        "INFERENCE_NUM_THREADS": int(settings.get("threads", 1)),
    }
    if setting(settings, "precision_hint", PRECISIONS) == "f32":
        config["INFERENCE_PRECISION_HINT"] = "f32"
    return _ov().Core().compile_model(model, "CPU", config)


def request_runner(compiled: Any, split_batch: bool = False) -> Runner:
    """Run a compiled model on a batch with one synchronous request; with `split_batch`,
    the batch split over the model's streams and run as that many asynchronous requests.

    Under the THROUGHPUT hint OpenVINO makes several streams (here 2, one thread each),
    but one synchronous request uses only one of them: on the small CNN at batch 256 that
    measured 2.74 ms, against 1.49 ms split over both streams and 2.31 ms under LATENCY
    (benchmarks/infer_runtime_settings.py).
    """
    ov = _ov()
    requests = int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
    if split_batch and requests > 1:
        return _queue_runner(ov, compiled, requests)
    request = compiled.create_infer_request()

    def run(*batch: np.ndarray) -> np.ndarray:
        # Sharing the caller's buffers and skipping the result dict saves ~10 µs a call.
        for index, array in enumerate(batch):
            request.set_input_tensor(index, ov.Tensor(array, shared_memory=True))
        request.infer()
        out = request.get_output_tensor(0).data  # the request reuses its buffer: copy
        return out.astype(np.float32) if out.dtype != np.float32 else out.copy()

    return run


def runner_for(model: Any, settings: Mapping[str, Any], signature: InputSignature) -> Runner:
    """The runner of `model` under `settings`, which may hold a second compiled model for
    the batches the first serves badly (compiled at the first such batch):

    * ``static_batch`` N: batches of N run on the model compiled for that static shape,
      others on the model compiled with a dynamic batch axis;
    * ``split_batch`` (THROUGHPUT: one stream per core, the batch split over them): a
      batch smaller than the streams would leave cores idle (ResNet-50 int8 at batch 1 on
      one stream of 2: 22.97 ms against 12.73 under LATENCY, the same answers;
      benchmarks/openvino_small_batch.py), so it runs on the model compiled under LATENCY,
      one request over every thread.
    """
    static_batch = settings.get("static_batch")
    if static_batch:
        dynamic = _compiled_later(lambda: request_runner(compile_model(model, settings)))
        try:
            fixed = model.clone()
            fixed.reshape(static_shapes(signature, int(static_batch)))
            static = request_runner(compile_model(fixed, settings))
        except Exception:  # a graph that will not take a static shape: the dynamic one runs
            return lambda *batch: dynamic()(*batch)
        return lambda *batch: (static if len(batch[0]) == static_batch else dynamic())(*batch)
    compiled = compile_model(model, settings)
    streams = int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
    main = request_runner(compiled, bool(settings.get("split_batch")))
    if not settings.get("split_batch") or streams < 2:
        return main
    latency = {**settings, "hint": "LATENCY"}
    small = _compiled_later(lambda: request_runner(compile_model(model, latency)))
    return lambda *batch: (main if len(batch[0]) >= streams else small())(*batch)


def _compiled_later(make: Callable[[], Runner]) -> Callable[[], Runner]:
    """`make()`'s runner, made at the first call (once, whichever thread asks first)."""
    lock = threading.Lock()
    made: list[Runner] = []

    def get() -> Runner:
        if not made:
            with lock:
                if not made:
                    made.append(make())
        return made[0]

    return get


def static_shapes(signature: InputSignature, batch: int) -> dict[int, list[int]]:
    """Each input's shape with the batch axis at `batch`: the signature's fixed axes fixed,
    its other symbolic axes (a sequence) left dynamic (-1)."""
    return {
        index: [batch, *(d if isinstance(d, int) else -1 for d in spec.shape[1:])]
        for index, spec in enumerate(signature.inputs)
    }


def _queue_runner(ov: Any, compiled: Any, requests: int) -> Runner:
    """The batch split over `requests` asynchronous requests, one per stream.

    The first call at each new input shape runs its parts one after another, the later
    ones at once. OpenVINO's CPU plugin prepares a dynamic-shape model for a shape at the
    first call that meets it; with two streams meeting a new shape at once, ViT-B/16 fp32
    under THROUGHPUT gave wrong answers (max abs 0.6-3.1) at one or two batch sizes in 5
    of 8 fresh processes (12 sizes, each called twice), and kept giving them in that
    process; with the first call alone, 0 of 8 (OpenVINO 2026.4, Zen 4;
    benchmarks/openvino_batch_check.py; never under LATENCY, one stream). It costs only
    that first call.
    """
    queue = ov.AsyncInferQueue(compiled, requests)
    outputs: dict[int, np.ndarray] = {}
    seen: set[tuple[tuple[int, ...], ...]] = set()  # the input shapes run so far

    def done(request: Any, index: int) -> None:
        outputs[index] = request.get_output_tensor(0).data.copy()

    queue.set_callback(done)

    def run(*batch: np.ndarray) -> np.ndarray:
        rows = len(batch[0])
        shapes = tuple(a.shape for a in batch)
        first = FIRST_CALL_ALONE and shapes not in seen
        bounds = np.array_split(np.arange(rows), max(1, min(requests, rows)))
        for index, rows_of in enumerate(bounds):
            feed = {i: a[rows_of[0] : rows_of[-1] + 1] for i, a in enumerate(batch)}
            queue.start_async(feed, userdata=index)
            if first:
                queue.wait_all()
        queue.wait_all()
        seen.add(shapes)
        return np.concatenate([outputs.pop(i) for i in range(len(bounds))], axis=0)

    return run


@BACKENDS.register("openvino")
class OpenVino(Backend):
    name = "openvino"
    summary = "OpenVINO CPU: default precision (bf16 where supported), fp32, NNCF int8"
    module = "openvino"
    extra = "openvino"
    sources = frozenset({"torch", "onnx"})

    def candidates(self, ctx: BuildContext) -> list[Candidate]:
        hint = "LATENCY" if ctx.target == "latency" else "THROUGHPUT"
        # "precision" is what runs (for reports); "precision_hint" is what OpenVINO is told.
        native = default_precision()
        split = hint == "THROUGHPUT" and ctx.batch_size > 1
        base = {
            "precision_hint": "default", "hint": hint, "threads": ctx.threads, "int8": False,
            "split_batch": split, "static_batch": _static_batch(ctx, split),
        }  # fmt: skip
        default = {**base, "precision": "fp32" if native == "f32" else native}
        exact = Exactness.APPROXIMATE if native != "f32" else Exactness.NUMERIC
        out = [Candidate("openvino", self.name, default, exact)]
        if native != "f32":
            f32 = {**base, "precision_hint": "f32", "precision": "fp32"}
            out.append(Candidate("openvino-fp32", self.name, f32, Exactness.NUMERIC))
        try:
            require("nncf", extra="openvino", purpose="OpenVINO int8 quantization")
            if ctx.calibration is not None:  # NNCF calibrates on the user's data only
                int8 = {
                    **base, "int8": True, "precision": "int8",
                    "model_type": "transformer" if ctx.attention else "default",
                }  # fmt: skip
                out.append(Candidate("openvino-int8", self.name, int8, Exactness.APPROXIMATE))
        except ImportError:
            pass
        if hint == "THROUGHPUT":
            # Which is faster, the batch split over the streams or one request over all
            # cores, changes between runs on the small CNN at batch 256 (1.49 against
            # 2.31 ms in benchmarks/results_infer_settings.md; one request chosen at
            # 1.31 ms in benchmarks/results_infer.md), so both are candidates.
            latency = {
                **default, "hint": "LATENCY", "split_batch": False,
                "static_batch": _static_batch(ctx, False),
            }  # fmt: skip
            out.append(Candidate("openvino-latency-hint", self.name, latency, exact))
        return out

    def build(self, candidate: Candidate, ctx: BuildContext) -> Built:
        ov = _ov()
        path, export_s = ctx.onnx_file()
        # Converted once per run: 5 s a candidate for BERT-base, 7-14 s for ViT-B/16.
        # Compiling, reshaping a clone and saving leave the shared model as it was.
        model, convert_s = ctx.shared("openvino model", lambda: ov.convert_model(str(path)))
        if candidate.settings.get("int8"):
            transformer = candidate.settings.get("model_type") == "transformer"
            calibration = ctx.needs_calibration()
            model, quantize_s = timed(
                lambda: quantize.quantize_nncf(model.clone(), calibration, transformer=transformer)
            )
            convert_s += quantize_s
        runner, compile_s = timed(lambda: runner_for(model, candidate.settings, ctx.signature))

        def save(directory: Path) -> dict[str, Any]:
            ov.save_model(model, str(directory / MODEL_FILE), compress_to_fp16=False)
            return {"model": MODEL_FILE, "weights": "model.bin"}

        return Built(runner, export_s + convert_s, compile_s, save)

    def load(
        self,
        directory: Path,
        files: Mapping[str, Any],
        settings: Mapping[str, Any],
        signature: InputSignature,
        *,
        trust_code: bool = False,
    ) -> Runner:
        artifact_file(directory, files, "weights")  # model.bin, read beside the IR
        model = _ov().Core().read_model(str(artifact_file(directory, files, "model")))
        return runner_for(model, settings, signature)


def _static_batch(ctx: BuildContext, split: bool) -> int | None:
    """The batch to compile a static shape for: the run's, where one request runs the
    whole batch and the signature has a batch axis; None otherwise."""
    return None if split or ctx.signature.batch_symbol is None else ctx.batch_size
