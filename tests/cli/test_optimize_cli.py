"""`jiasu optimize` and `jiasu predict` run as a user runs them: real subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from jiasu.core.signature import InputSignature
from jiasu.data import DatasetSplits, write_idx
from jiasu.models import ModelSpec, create_model, save_model_dir
from jiasu.train import fit

pytest.importorskip("onnxruntime")


def jiasu(*args: str, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jiasu.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={**os.environ, "JIASU_DATA_DIR": ""},
    )


def _failed_cleanly(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ") and message in result.stderr, result.stderr


@pytest.fixture(scope="module")
def model_dir(mnist: DatasetSplits, tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = create_model("mlp")
    fit(model, mnist.train.take(3_000), epochs=1, batch_size=64, quiet=True)
    return save_model_dir(tmp_path_factory.mktemp("m") / "mlp", model.eval(), ModelSpec("mlp"))


@pytest.fixture(scope="module")
def artifact(model_dir: Path, mnist_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("a") / "artifact"
    report = out.parent / "report.json"
    result = jiasu(
        "optimize", str(model_dir), "--data-dir", str(mnist_dir), "--backends", "onnxruntime",
        "--eval-samples", "500", "--calibration-samples", "64", "--measure-s", "0.3",
        "--out", str(out), "--json", str(report), "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "torch-eager" in result.stdout and "chose " in result.stdout
    assert "alone" in result.stdout and "screened" in result.stdout  # how each was timed
    data = json.loads(report.read_text())
    assert data["schema_version"] == 3 and data["target"] == "latency" and data["batch_size"] == 1
    assert {"baseline", "chosen", "candidates", "environment"} <= set(data)
    assert json.loads((out / "report.json").read_text())["chosen"] == data["chosen"]
    return out


def test_predict_npy_and_idx(artifact: Path, mnist: DatasetSplits, tmp_path: Path) -> None:
    images = mnist.test.images[:50].numpy()  # (50, 1, 28, 28) float32 in [0, 1]
    np.save(tmp_path / "x.npy", images)
    result = jiasu("predict", str(artifact), "--input", str(tmp_path / "x.npy"),
                   "--output", str(tmp_path / "logits.npy"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    logits = np.load(tmp_path / "logits.npy")
    assert logits.shape == (50, 10) and logits.dtype == np.float32

    pixels = np.rint(images[:, 0] * 255).astype(np.uint8)  # MNIST's own bytes: exact round trip
    write_idx(tmp_path / "x-idx3-ubyte.gz", pixels)
    result = jiasu("predict", str(artifact), "--input", str(tmp_path / "x-idx3-ubyte.gz"),
                   "--output", str(tmp_path / "classes.npy"), "--classes")  # fmt: skip
    assert result.returncode == 0, result.stderr
    classes = np.load(tmp_path / "classes.npy")
    np.testing.assert_array_equal(classes, logits.argmax(1))
    printed = jiasu("predict", str(artifact), "--input", str(tmp_path / "x.npy"))
    assert printed.stdout.split() == [str(c) for c in classes]


def test_predict_warns_about_nonfinite_inputs(
    artifact: Path, mnist: DatasetSplits, tmp_path: Path
) -> None:
    images = mnist.test.images[:20].numpy().copy()
    images[3, 0, 5, 5], images[7, 0, 0, 0] = np.nan, np.inf
    np.save(tmp_path / "x.npy", images)
    result = jiasu("predict", str(artifact), "--input", str(tmp_path / "x.npy"))
    assert result.returncode == 0, result.stderr
    assert f"warning: 2 of 20 inputs in {tmp_path / 'x.npy'} hold NaN or infinity" in result.stderr
    assert len(result.stdout.split()) == 20  # still one prediction per input


def test_predictor_warns_about_nonfinite_inputs_it_converts(artifact: Path) -> None:
    from jiasu.data.finite import NonFiniteInputWarning
    from jiasu.infer import load

    predictor = load(artifact)
    batch = np.zeros((4, 28, 28))  # float64 (N, H, W): converted, off the inline fast path
    batch[1, 2, 3] = np.nan
    with pytest.warns(NonFiniteInputWarning, match="1 of 4 inputs hold NaN or infinity"):
        logits = predictor(batch)
    assert logits.shape == (4, 10)


def test_predict_wrong_input_shape(artifact: Path, tmp_path: Path) -> None:
    np.save(tmp_path / "bad.npy", np.zeros((4, 3, 32, 32), dtype=np.float32))
    result = jiasu("predict", str(artifact), "--input", str(tmp_path / "bad.npy"))
    _failed_cleanly(result, "input 'input' has shape (4, 3, 32, 32)")
    assert "the model takes input:float32[B,1,28,28]" in result.stderr


def test_optimize_corrupt_onnx(tmp_path: Path) -> None:
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"this is not an onnx protobuf \x00\xff")
    _failed_cleanly(jiasu("optimize", str(bad)), "is not a valid ONNX model")


def test_optimize_refuses_a_pickle_payload_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "payload-ran"
    evil = tmp_path / "weights.pt"
    code = (
        "import torch, pathlib, sys\n"
        "class P:\n"
        "    def __reduce__(self):\n"
        "        return (pathlib.Path.touch, (pathlib.Path(sys.argv[1]),))\n"
        "torch.save({'linear.weight': P()}, sys.argv[2])\n"
    )
    subprocess.run([sys.executable, "-c", code, str(marker), str(evil)], check=True)
    result = jiasu("optimize", "mlp", "--weights", str(evil))
    _failed_cleanly(result, "not a plain weights file")
    assert not marker.exists()


def test_optimize_unknown_backend(model_dir: Path) -> None:
    result = jiasu("optimize", str(model_dir), "--backends", "onnxruntime,tensorrt")
    _failed_cleanly(result, "unknown backend 'tensorrt'")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_predict_on_spark_equals_a_single_process(
    artifact: Path, mnist: DatasetSplits, tmp_path: Path
) -> None:
    pytest.importorskip("pyspark")
    import shutil

    if shutil.which("java") is None:
        pytest.skip("Spark needs Java (a JRE); none is installed here")
    np.save(tmp_path / "x.npy", mnist.test.images[:300].numpy())
    here, there = tmp_path / "here.npy", tmp_path / "there.npy"
    assert jiasu("predict", str(artifact), "--input", str(tmp_path / "x.npy"),
                 "--output", str(here)).returncode == 0  # fmt: skip
    result = jiasu(
        "predict", str(artifact), "--input", str(tmp_path / "x.npy"), "--output", str(there),
        "--engine", "spark", "--workers", "2", "--batch-size", "64",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal(np.load(here), np.load(there))


def test_optimize_writes_an_html_report_and_can_skip_isolation(
    model_dir: Path, mnist_dir: Path, tmp_path: Path
) -> None:
    pytest.importorskip("matplotlib")
    html, report = tmp_path / "optimize.html", tmp_path / "report.json"
    result = jiasu(
        "optimize", str(model_dir), "--data-dir", str(mnist_dir), "--backends", "torch,onnxruntime",
        "--eval-samples", "200", "--calibration-samples", "32", "--measure-s", "0.2",
        "--html", str(html), "--json", str(report), "--no-isolate", "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    timings = {c["timing"] for c in json.loads(report.read_text())["candidates"]}
    assert timings == {"interleaved"}
    page = html.read_text()
    assert page.startswith("<!DOCTYPE html>") or "<html" in page[:200]
    assert "<svg" in page and "onnxruntime" in page


def test_optimize_adapts_an_onnx_file_taking_28x28_images_and_refuses_other_shapes(
    mnist_dir: Path, tmp_path: Path
) -> None:
    """TensorFlow exports MNIST models taking (N, 28, 28): optimize adds one exact Reshape
    node in front and says so; a model for other images is one clear error."""
    from torch import nn

    from jiasu.infer.export import export_onnx

    torch.manual_seed(0)
    flat = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10)).eval()
    tf_like = export_onnx(flat, InputSignature.from_shape((28, 28)), tmp_path / "tf_like.onnx").path
    out, report = tmp_path / "artifact", tmp_path / "report.json"
    result = jiasu(
        "optimize", str(tf_like), "--data-dir", str(mnist_dir), "--backends", "onnxruntime",
        "--eval-samples", "200", "--calibration-samples", "32", "--measure-s", "0.2",
        "--no-isolate", "--out", str(out), "--json", str(report),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "takes (28, 28); optimizing it with one exact node in front" in result.stderr
    assert json.loads(report.read_text())["input_shape"] == [1, 28, 28]
    images = np.random.default_rng(0).random((5, 1, 28, 28), dtype=np.float32)
    import jiasu as api

    with torch.no_grad():
        expected = flat(torch.from_numpy(images)).numpy()
    np.testing.assert_allclose(api.load(out)(images), expected, rtol=1e-4, atol=1e-4)

    cifar_like = InputSignature.from_shape((3, 8, 8))
    other = export_onnx(
        nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 10)), cifar_like, tmp_path / "c.onnx"
    ).path
    mnist_batch = tmp_path / "mnist_batch.npy"
    np.save(mnist_batch, images)
    _failed_cleanly(  # the user's data does not fit the model: one sentence, before any work
        jiasu("optimize", str(other), "--data", str(mnist_batch)), "input:float32[B,3,8,8]"
    )
