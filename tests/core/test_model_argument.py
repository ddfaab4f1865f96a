"""One parser for MODEL (`jiasu train --model`, `jiasu optimize MODEL`): what each text is,
and one sentence for each problem, on real files and folders made here."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from jiasu.cli.main import main
from jiasu.core.errors import CheckpointError, ConfigError
from jiasu.infer import resolve_model
from jiasu.models import ModelSpec, save_model_dir
from jiasu.models.argument import parse_model_argument

TRAIN_KINDS = ("keras", "registry", "factory")  # what `jiasu train --model` takes


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    return save_model_dir(tmp_path / "trained", ModelSpec("mlp").build().eval(), ModelSpec("mlp"))


def test_each_kind_is_recognised(model_dir: Path, tmp_path: Path) -> None:
    onnx, keras = tmp_path / "m.onnx", tmp_path / "m.KERAS"
    onnx.write_bytes(b"any bytes: the parser does not read the file")
    keras.write_bytes(b"")
    weights = tmp_path / "w.safetensors"
    cases = {
        str(model_dir): ("directory", model_dir, None),
        str(onnx): ("onnx", onnx, None),
        str(keras): ("keras", keras, None),
        "cnn": ("registry", None, "cnn"),
        "my_pkg.nets:small": ("factory", None, "my_pkg.nets:small"),
    }
    for text, (kind, path, name) in cases.items():
        argument = parse_model_argument(text)
        assert (argument.kind, argument.path, argument.name) == (kind, path, name), text
        assert argument.holds_weights == (path is not None)
    assert parse_model_argument("mlp", weights=weights).weights == weights


def test_a_registry_name_wins_over_a_folder_of_that_name(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`jiasu train --save cnn` leaves a folder named cnn: `--model cnn` still means the
    registry model, and optimize takes the folder as the model directory it is."""
    monkeypatch.chdir(model_dir.parent)
    model_dir.rename("cnn")
    assert parse_model_argument("cnn", accept=TRAIN_KINDS).kind == "registry"
    assert parse_model_argument("cnn").kind == "directory"
    Path("mlp").mkdir()  # a plain folder: the registry name
    assert parse_model_argument("mlp").kind == "registry"


@pytest.mark.parametrize(
    ("text", "accept", "error", "message"),
    [
        ("resnet50", None, ConfigError, "unknown model 'resnet50' (did you mean 'resnet'?)"),
        ("resnet50", TRAIN_KINDS, ConfigError, "neither a .keras file, a registry model (cnn"),
        ("missing.onnx", None, ConfigError, "ONNX file missing.onnx does not exist"),
        ("missing.keras", None, ConfigError, "Keras model file missing.keras does not exist"),
        ("TMP/folder.keras", None, ConfigError, "is a folder, not a file; check the path"),
        ("TMP", None, CheckpointError, "is a folder but not a jiasu model directory"),
        ("TMP", TRAIN_KINDS, ConfigError, "is a folder; MODEL must be a .keras file"),
        ("DIR", TRAIN_KINDS, ConfigError, "is a model directory; MODEL must be a .keras file"),
    ],
)
def test_every_problem_is_one_sentence(
    text: str,
    accept: tuple[str, ...] | None,
    error: type[Exception],
    message: str,
    model_dir: Path,
    tmp_path: Path,
) -> None:
    (tmp_path / "folder.keras").mkdir()
    text = text.replace("TMP", str(tmp_path)).replace("DIR", str(model_dir))
    with pytest.raises(error) as caught:
        parse_model_argument(text, **({} if accept is None else {"accept": accept}))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_weights_for_a_model_that_holds_them_are_refused(model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="already holds its weights; drop --weights"):
        parse_model_argument(str(model_dir), weights=tmp_path / "w.safetensors")


def test_train_refuses_an_onnx_file_and_a_model_directory_in_one_line(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: 'unknown model …' for both, as if they were misspelt registry names."""
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"\x08\x07")
    for model, kind in ((onnx, "an .onnx file"), (model_dir, "a model directory")):
        assert main(["train", "--model", str(model), "--data-dir", str(tmp_path / "none")]) == 2
        err = capsys.readouterr().err.strip()
        assert err == (
            f"error: {model} is {kind}; MODEL must be a .keras file, a registry model or "
            "package.module:factory here"
        )


def test_optimize_takes_a_registry_name_beside_a_folder_of_that_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: a folder named mlp (not a model directory) in the current directory made
    `jiasu optimize mlp --weights W` fail ('is a folder but not a jiasu model directory')."""
    torch.manual_seed(0)
    net = ModelSpec("mlp").build().eval()
    weights = tmp_path / "mlp.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(weights))
    monkeypatch.chdir(tmp_path)
    Path("mlp").mkdir()
    source = resolve_model("mlp", weights=weights)
    assert source.reference == {"kind": "registry", "spec": {"name": "mlp", "kwargs": {}}}
