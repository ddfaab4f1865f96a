"""Loading a folder never runs code it names; artifacts hold all they need to run.

Hostile artifacts are built here at test time: a folder whose artifact.json names a module
(its own ``payload.py``, or ``os:abort``), and file entries leading outside the folder.
The self-contained cases are real optimize runs: a torch model from a user's factory, an
ONNX model with external data and a Keras model, each loaded after its source is gone.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import jiasu
from jiasu.cli.main import main
from jiasu.core.errors import CheckpointError
from jiasu.core.signature import InputSignature
from jiasu.infer import ModelSource, OptimizeConfig, optimize, resolve_model
from jiasu.models import create_model

IMAGES = np.random.default_rng(0).random((64, 1, 28, 28), dtype=np.float32)
LABELS = np.arange(64) % 10
MNIST_SIGNATURE = InputSignature.from_shape((1, 28, 28))
QUICK = {"isolate": False, "measure_s": 0.1, "warmup": 1, "eval_batch_size": 64}

FACTORY_SOURCE = """\
import torch
from torch import nn

def tiny_cnn():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 26 * 26, 10)
    )
"""


def _one_line_error(code: int, stderr: str, *phrases: str) -> None:
    assert code == 2, (code, stderr[-2000:])  # an exit status, not a signal
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr[-2000:]
    assert all(p in lines[0] for p in phrases), lines[0]


def _factory_artifact(folder: Path, factory: str) -> Path:
    """A torch artifact, as jiasu wrote them before, that names `factory` to rebuild its model."""
    folder.mkdir()
    model = create_model("mlp")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              str(folder / "model.safetensors"))  # fmt: skip
    meta = {
        "format": "jiasu-inference", "format_version": 1,
        "candidate": {"name": "torch-eager", "backend": "torch", "settings": {},
                      "exactness": "exact"},
        "files": {"weights": "model.safetensors",
                  "model": {"kind": "factory", "factory": factory}},
        "input_shape": [1, 28, 28], "num_classes": 10, "output": "logits",
    }  # fmt: skip
    (folder / "artifact.json").write_text(json.dumps(meta))
    np.save(folder / "x.npy", IMAGES[:3])
    return folder


def _payload_artifact(tmp_path: Path) -> tuple[Path, Path]:
    folder = _factory_artifact(tmp_path / "art", "payload:make")
    marker = tmp_path / "payload-ran"
    (folder / "payload.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).touch()\n"
        "def make():\n    from jiasu.models import create_model\n    return create_model('mlp')\n"
    )
    return folder, marker


def test_an_artifact_naming_a_module_in_its_own_folder_is_refused_and_never_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, marker = _payload_artifact(tmp_path)
    monkeypatch.chdir(folder)
    monkeypatch.syspath_prepend(str(folder))  # as `python -m` puts the working folder first
    with pytest.raises(CheckpointError, match="--trust-code"):
        jiasu.load(folder)
    assert not marker.exists() and "payload" not in sys.modules
    code = main(["predict", ".", "--input", "x.npy"])
    _one_line_error(code, capsys.readouterr().err, "payload:make", "--trust-code")
    assert not marker.exists() and "payload" not in sys.modules


def test_os_abort_named_by_an_artifact_is_refused_by_predict_with_one_line(
    tmp_path: Path,
) -> None:
    folder = _factory_artifact(tmp_path / "art", "os:abort")
    result = subprocess.run(  # a process of its own: os.abort would end this one
        [sys.executable, "-m", "jiasu.cli.main", "predict", str(folder), "--input",
         str(folder / "x.npy")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    _one_line_error(result.returncode, result.stderr, "os:abort", "--trust-code")


def test_trust_code_imports_a_factory_the_user_trusts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "legit_models.py").write_text(
        "from jiasu.models import create_model\ndef mlp():\n    return create_model('mlp')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    folder = _factory_artifact(tmp_path / "art", "legit_models:mlp")
    with pytest.raises(CheckpointError, match="--trust-code"):
        jiasu.load(folder)
    predictor = jiasu.load(folder, trust_code=True)
    model = create_model("mlp").eval()
    model.load_state_dict(
        {k: torch.from_numpy(v) for k, v in _weights(folder / "model.safetensors").items()}
    )
    with torch.no_grad():
        expected = model(torch.from_numpy(IMAGES)).numpy()
    np.testing.assert_allclose(predictor(IMAGES), expected, atol=1e-6)
    capsys.readouterr()
    assert main(["predict", str(folder), "--input", str(folder / "x.npy"), "--trust-code"]) == 0
    assert capsys.readouterr().out.split() == [str(c) for c in expected[:3].argmax(1)]


def _weights(path: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(path))


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("onnxruntime")
    from jiasu.infer.export import export_onnx

    torch.manual_seed(0)
    return export_onnx(
        create_model("mlp"), MNIST_SIGNATURE, tmp_path_factory.mktemp("o") / "m.onnx"
    ).path


def _onnx_artifact(folder: Path, model_entry: str) -> Path:
    folder.mkdir()
    meta = {
        "format": "jiasu-inference", "format_version": 1,
        "candidate": {"name": "onnxruntime", "backend": "onnxruntime",
                      "settings": {"threads": 1}, "exactness": "numeric"},
        "files": {"model": model_entry}, "input_shape": [1, 28, 28], "num_classes": 10,
    }  # fmt: skip
    (folder / "artifact.json").write_text(json.dumps(meta))
    return folder


@pytest.mark.parametrize("entry", ["absolute", "../outside.onnx", "link.onnx", "/etc/passwd"])
def test_file_entries_leading_outside_the_artifact_are_refused(
    entry: str, onnx_model: Path, tmp_path: Path
) -> None:
    outside = shutil.copyfile(onnx_model, tmp_path / "outside.onnx")  # a model that would run
    if entry == "absolute":
        entry = str(outside)
    folder = _onnx_artifact(tmp_path / "art", entry)
    if entry == "link.onnx":
        (folder / "link.onnx").symlink_to(outside)
    with pytest.raises(CheckpointError, match="outside its folder") as error:
        jiasu.load(folder)
    assert "\n" not in str(error.value)


def test_an_onnx_model_with_external_data_runs_from_its_artifact_after_the_source_is_deleted(
    onnx_model: Path, tmp_path: Path
) -> None:
    import onnx

    source_dir = tmp_path / "source"
    source_dir.mkdir()
    model = onnx.load(str(onnx_model))
    onnx.save_model(model, str(source_dir / "mlp.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="mlp.onnx.data")  # fmt: skip
    assert (source_dir / "mlp.onnx.data").stat().st_size > 100_000  # the weights are outside
    source = resolve_model(str(source_dir / "mlp.onnx"))
    config = OptimizeConfig(backends=("onnxruntime",), **QUICK)
    optimize(source, IMAGES, LABELS, IMAGES[:16], config, out=tmp_path / "art")
    expected = jiasu.load(tmp_path / "art")(IMAGES)
    shutil.rmtree(source_dir)
    np.testing.assert_array_equal(jiasu.load(tmp_path / "art")(IMAGES), expected)
    session = pytest.importorskip("onnxruntime").InferenceSession(str(onnx_model))
    reference = session.run(None, {session.get_inputs()[0].name: IMAGES})[0]
    np.testing.assert_allclose(expected, reference, atol=1e-4)


def test_a_torch_artifact_from_a_user_factory_predicts_without_the_factory_or_trust(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The artifact holds the model's graph: `jiasu predict` runs it once the user's code
    is gone, with no --trust-code, and gives the eager model's logits."""
    code = tmp_path / "user_code"
    code.mkdir()
    (code / "user_models.py").write_text(FACTORY_SOURCE)
    monkeypatch.syspath_prepend(str(code))
    import user_models  # type: ignore[import-not-found]

    eager = user_models.tiny_cnn().eval()
    save_file(eager.state_dict(), str(tmp_path / "w.safetensors"))
    source = resolve_model("user_models:tiny_cnn", weights=tmp_path / "w.safetensors")
    config = OptimizeConfig(backends=("torch",), **QUICK)
    optimize(source, IMAGES, LABELS, IMAGES[:16], config, out=tmp_path / "art")
    shutil.rmtree(code)  # the user's code is gone, and not imported anywhere any more
    monkeypatch.delitem(sys.modules, "user_models")
    np.save(tmp_path / "x.npy", IMAGES)
    out = tmp_path / "logits.npy"
    assert main(["predict", str(tmp_path / "art"), "--input", str(tmp_path / "x.npy"),
                 "--output", str(out)]) == 0  # fmt: skip
    with torch.no_grad():
        expected = eager(torch.from_numpy(IMAGES)).numpy()
    assert np.abs(np.load(out) - expected).max() < 1e-5


def test_a_keras_artifact_runs_after_its_source_file_is_moved(tmp_path: Path) -> None:
    try:
        from jiasu.integrations.keras import import_keras

        keras = import_keras()
    except ImportError:
        pytest.skip("keras is not installed")
    model = keras.Sequential(
        [keras.Input((28, 28, 1)), keras.layers.Conv2D(4, 3, activation="relu"),
         keras.layers.Flatten(), keras.layers.Dense(10)]
    )  # fmt: skip
    model.save(tmp_path / "model.keras")
    source = resolve_model(str(tmp_path / "model.keras"))
    config = OptimizeConfig(backends=("torch",), **QUICK)
    optimize(source, IMAGES, LABELS, IMAGES[:16], config, out=tmp_path / "art")
    expected = np.asarray(model.predict(IMAGES.transpose(0, 2, 3, 1), verbose=0))
    (tmp_path / "model.keras").rename(tmp_path / "moved.keras")
    assert str(tmp_path) not in (tmp_path / "art" / "artifact.json").read_text()  # no source path
    np.testing.assert_allclose(jiasu.load(tmp_path / "art")(IMAGES), expected, atol=1e-5)


def test_a_module_given_as_a_python_object_is_saved_as_its_graph(tmp_path: Path) -> None:
    model = create_model("cnn").eval()
    source = ModelSource("torch", MNIST_SIGNATURE, "cnn", model)  # no way to rebuild it
    config = OptimizeConfig(backends=("torch",), **QUICK)
    optimize(source, IMAGES, LABELS, IMAGES[:16], config, out=tmp_path / "art")
    with torch.no_grad():
        expected = model(torch.from_numpy(IMAGES)).numpy()
    assert np.abs(jiasu.load(tmp_path / "art")(IMAGES) - expected).max() < 1e-5


@pytest.fixture(scope="module")
def graph_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A torch artifact holding its graph, written the way optimize writes one."""
    from jiasu.infer.backends.torch_program import export_graph, save_graph

    folder = tmp_path_factory.mktemp("g") / "art"
    folder.mkdir()
    from jiasu.infer.export import capture
    from jiasu.models.adapter import adapt

    program = capture(adapt(create_model("mlp").eval(), MNIST_SIGNATURE), MNIST_SIGNATURE)
    files = save_graph(folder, *export_graph(program))
    meta = {
        "format": "jiasu-inference", "format_version": 1,
        "candidate": {"name": "torch-eager", "backend": "torch", "settings": {},
                      "exactness": "exact"},
        "files": files, "input_shape": [1, 28, 28], "num_classes": 10,
    }  # fmt: skip
    (folder / "artifact.json").write_text(json.dumps(meta))
    assert jiasu.load(folder)(IMAGES).shape == (64, 10)
    return folder


@pytest.mark.parametrize(
    "op,args",
    [
        ("os.system", ["touch {marker}"]),
        ("builtins.exec", ["open({marker!r}, 'w')"]),
        ("torch.ops.aten.linear.default", [{"input": 0}]),  # torch's own spelling: not ours
        ("aten.from_file.default", ["/etc/passwd"]),  # reads a file: refused
        ("aten.linear.default", [{"sympy": "__import__('os').system('touch {marker}')"}]),
    ],
)
def test_a_graph_calling_anything_but_plain_aten_operators_is_refused(
    op: str, args: list[object], graph_artifact: Path, tmp_path: Path
) -> None:
    folder = shutil.copytree(graph_artifact, tmp_path / "art")
    marker = tmp_path / "ran"
    graph = json.loads((folder / "model.graph.json").read_text())
    text = (
        json.dumps(args).replace("{marker}", str(marker)).replace("{marker!r}", repr(str(marker)))
    )
    graph["nodes"][0] = {"op": op, "args": json.loads(text), "kwargs": {}}
    (folder / "model.graph.json").write_text(json.dumps(graph))
    with pytest.raises(CheckpointError, match="is not a graph jiasu wrote"):
        jiasu.load(folder)
    assert not marker.exists()
