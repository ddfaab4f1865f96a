"""Every backend's candidates agree with eager PyTorch on real MNIST within their tolerance.

Exact and numeric candidates must match eager fp32 logits within their declared
tolerance; approximate ones (int8, bf16) must stay within the default accuracy budget.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from jiasu.core.signature import InputSignature
from jiasu.core.technique import Exactness
from jiasu.infer.backends import BACKENDS, BuildContext, Candidate, ModelSource
from jiasu.infer.backends.torch_optimized import fold_batchnorm
from jiasu.infer.verify import TOLERANCES, AccuracyBudget, judge, verify

MNIST_SIGNATURE = InputSignature.from_shape((1, 28, 28))

CNN_CANDIDATES = [
    ("torch_optimized", "torch-optimized"),
    ("torch_optimized", "torch-frozen"),
    ("onnxruntime", "onnxruntime"),
    ("onnxruntime", "onnxruntime-spin"),
    ("onnxruntime", "onnxruntime-1thread"),
    ("onnxruntime", "onnxruntime-int8-dynamic"),
    ("onnxruntime", "onnxruntime-int8-static-minmax"),
    ("onnxruntime", "onnxruntime-int8-static-entropy"),
    ("onnxruntime", "onnxruntime-int8-static-percentile"),
    ("openvino", "openvino"),
    ("openvino", "openvino-fp32"),
    ("openvino", "openvino-int8"),
]
MODULES = {"onnxruntime": "onnxruntime", "openvino": "openvino"}


def _context(model: nn.Module, tmp: Path, calib: np.ndarray) -> BuildContext:
    reference = {"kind": "registry", "spec": {"name": "cnn", "kwargs": {}}}
    source = ModelSource("torch", MNIST_SIGNATURE, "test model", model, reference=reference)
    return BuildContext(source, tmp, 2, 1, "latency", (calib,))


@pytest.fixture(scope="module")
def cnn_ctx(
    cnn: nn.Module, calib: np.ndarray, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BuildContext]:
    yield _context(cnn, tmp_path_factory.mktemp("cnn"), calib)


@pytest.fixture(scope="module")
def cnn_reference(cnn: nn.Module, val: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    with torch.no_grad():
        return cnn(torch.from_numpy(val[0])).numpy()


def _check(candidate: Candidate, ctx: BuildContext, reference: np.ndarray, val: tuple) -> None:
    images, labels = val
    built = BACKENDS.get(candidate.backend)().build(candidate, ctx)
    outputs = np.concatenate(
        [built.runner(images[i : i + 250]) for i in range(0, len(images), 250)]
    )
    result = verify(reference, outputs, labels)
    ok, reason = judge(candidate.exactness, result, AccuracyBudget())
    assert ok, f"{candidate.name}: {reason}"
    if candidate.exactness in TOLERANCES:  # the same function: predictions barely move
        assert result.top1_agreement >= TOLERANCES[candidate.exactness].min_top1
    assert result.accuracy > 0.8  # a trained model, not noise


@pytest.mark.parametrize("backend,name", CNN_CANDIDATES, ids=[n for _, n in CNN_CANDIDATES])
def test_cnn_candidate_agrees_with_eager(
    backend: str, name: str, cnn_ctx: BuildContext, cnn_reference: np.ndarray, val: tuple
) -> None:
    if backend in MODULES:
        pytest.importorskip(MODULES[backend])
    if name == "openvino-int8":
        pytest.importorskip("nncf")
    found = {c.name: c for c in BACKENDS.get(backend)().candidates(cnn_ctx)}
    if name == "openvino-fp32" and name not in found:
        pytest.skip("OpenVINO already runs fp32 by default on this CPU")
    _check(found[name], cnn_ctx, cnn_reference, val)


def test_openvino_default_precision_is_declared_honestly(cnn_ctx: BuildContext) -> None:
    pytest.importorskip("openvino")
    from jiasu.infer.backends.openvino import default_precision

    default = next(
        c for c in BACKENDS.get("openvino")().candidates(cnn_ctx) if c.name == "openvino"
    )
    expected = Exactness.NUMERIC if default_precision() == "f32" else Exactness.APPROXIMATE
    assert default.exactness == expected


def test_compile_agrees_with_eager_on_the_mlp(
    mlp: nn.Module, calib: np.ndarray, val: tuple, tmp_path: Path
) -> None:
    ctx = _context(mlp, tmp_path, calib)
    (candidate,) = BACKENDS.get("compile")().candidates(ctx)
    with torch.no_grad():
        reference = mlp(torch.from_numpy(val[0])).numpy()
    _check(candidate, ctx, reference, val)


def test_batchnorm_folding_removes_bn_and_keeps_the_function(cnn: nn.Module, val: tuple) -> None:
    folded = fold_batchnorm(cnn)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in cnn.modules())  # the original is untouched
    x = torch.from_numpy(val[0][:256])
    with torch.no_grad():
        torch.testing.assert_close(folded(x), cnn(x), atol=1e-4, rtol=1e-4)


SPLIT_CANDIDATES = [
    ("onnxruntime", "onnxruntime-parallel"),
    ("openvino", "openvino"),
    ("openvino", "openvino-fp32"),
]


@pytest.mark.parametrize("backend,name", SPLIT_CANDIDATES, ids=[n for _, n in SPLIT_CANDIDATES])
def test_a_batch_split_over_parallel_runs_gives_the_same_outputs_in_order(
    backend: str,
    name: str,
    cnn: nn.Module,
    calib: np.ndarray,
    cnn_reference: np.ndarray,
    val: tuple,
    tmp_path: Path,
) -> None:
    """Throughput candidates cut each batch into parts run at once (ONNX Runtime: 1-thread
    runs from a thread pool; OpenVINO: one async request per stream); the parts must come
    back in order, for any batch size, and the saved artifact must split the same way."""
    pytest.importorskip(MODULES[backend])
    ctx = _context(cnn, tmp_path, calib)
    ctx.batch_size, ctx.target = 256, "throughput"
    found = {c.name: c for c in BACKENDS.get(backend)().candidates(ctx)}
    if name not in found:
        pytest.skip(f"{name} is not proposed on this CPU")
    candidate = found[name]
    split = candidate.settings.get("parallel", 1) > 1 or candidate.settings.get("split_batch")
    assert split, candidate.settings
    _check(candidate, ctx, cnn_reference, val)
    built = BACKENDS.get(backend)().build(candidate, ctx)
    images = val[0]
    whole = built.runner(images[:256])
    for size in (1, 2, 3, 7):  # fewer rows than parts, and parts of unequal length
        np.testing.assert_allclose(built.runner(images[:size]), whole[:size], rtol=1e-5, atol=1e-5)
    files = built.save(tmp_path)
    loaded = BACKENDS.get(backend)().load(tmp_path, files, candidate.settings, MNIST_SIGNATURE)
    np.testing.assert_allclose(loaded(images[:256]), whole, rtol=1e-5, atol=1e-5)


def test_small_batches_through_bound_buffers_match_session_run(
    cnn: nn.Module, calib: np.ndarray, val: tuple, tmp_path: Path
) -> None:
    """Batches up to SMALL_BATCH rows run through an I/O binding made once per size: each
    call must see its own input, and each result must be a fresh array, in any thread."""
    pytest.importorskip("onnxruntime")
    from concurrent.futures import ThreadPoolExecutor

    from jiasu.infer.backends.onnxruntime import SMALL_BATCH, open_session, session_runner

    path, _ = _context(cnn, tmp_path, calib).onnx_file()
    session = open_session(path, {"threads": 1})
    runner = session_runner(session)
    images = val[0]

    def plain(batch: np.ndarray) -> np.ndarray:
        return session.run(None, {session.get_inputs()[0].name: batch})[0]

    first = runner(images[:1])
    second = runner(images[1:2])  # same size, new data: the bound buffer is refilled
    np.testing.assert_array_equal(first, plain(images[:1]))
    np.testing.assert_array_equal(second, plain(images[1:2]))
    assert not np.shares_memory(first, second)
    for rows in (3, SMALL_BATCH, SMALL_BATCH + 1):
        np.testing.assert_array_equal(runner(images[:rows]), plain(images[:rows]))

    def one(i: int) -> bool:
        batch = images[i : i + 2]
        return bool(np.array_equal(runner(batch), plain(batch)))

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(one, range(200)))


def test_a_large_model_gets_the_candidates_that_pay_on_large_models(
    cnn: nn.Module, tmp_path: Path
) -> None:
    from jiasu.infer.backends.base import LARGE_MODEL_CALIBRATION, count_parameters

    calib = np.zeros((300, 1, 28, 28), np.float32)
    ctx = _context(cnn, tmp_path, calib)
    assert count_parameters(ctx.source) == sum(p.numel() for p in cnn.state_dict().values())
    full = [
        c.name
        for b in ("onnxruntime", "torch_optimized")
        for c in BACKENDS.get(b)().candidates(ctx)
    ]
    ctx.large = True
    short = [
        c.name
        for b in ("onnxruntime", "torch_optimized")
        for c in BACKENDS.get(b)().candidates(ctx)
    ]
    assert "onnxruntime-int8-static-entropy" in full and "torch-frozen" in full
    assert set(short) < set(full) and "onnxruntime-int8-static-minmax" in short
    # at batch 1 (the context's) a large model keeps the spinning pool ORT's defaults use
    assert "onnxruntime-spin" in short and "onnxruntime-1thread" not in short
    at_32 = BuildContext(ctx.source, ctx.workdir, 2, 32, "throughput", ctx.calibration)
    at_32.large = True
    assert "onnxruntime-spin" not in [
        c.name for c in BACKENDS.get("onnxruntime")().candidates(at_32)
    ]
    assert not [n for n in short if "entropy" in n or "percentile" in n or "frozen" in n]
    assert len(ctx.needs_calibration()[0]) == LARGE_MODEL_CALIBRATION
    compile_backend = BACKENDS.get("compile")()
    assert compile_backend.candidates(ctx) == [] and "--backends" in compile_backend.why_none(ctx)
    ctx.named = frozenset({"compile"})  # named by the user: tried whatever the size
    assert [c.name for c in compile_backend.candidates(ctx)] == ["torch-compile"]
