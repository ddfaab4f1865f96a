"""Resolving MODEL: model directories, registry names and factories with weights, ONNX files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from jiasu.core.errors import CheckpointError, ConfigError
from jiasu.infer import resolve_model


@pytest.fixture
def weights(mlp: nn.Module, tmp_path: Path) -> Path:
    path = tmp_path / "mlp.safetensors"
    save_file({k: v.contiguous() for k, v in mlp.state_dict().items()}, str(path))
    return path


def _same(a: nn.Module, b: nn.Module) -> None:
    x = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(a.eval()(x), b.eval()(x), rtol=0, atol=0)


def test_registry_name_and_factory_with_safetensors(mlp: nn.Module, weights: Path) -> None:
    by_name = resolve_model("mlp", weights=weights)
    assert by_name.kind == "torch" and by_name.reference is not None
    assert by_name.module is not None
    _same(by_name.module, mlp)
    by_factory = resolve_model("jiasu.models.classifiers:mlp", weights=weights)
    assert by_factory.reference == {"kind": "factory", "factory": "jiasu.models.classifiers:mlp"}
    assert by_factory.module is not None
    _same(by_factory.module, mlp)


def test_weights_only_torch_checkpoint_is_read(mlp: nn.Module, tmp_path: Path) -> None:
    path = tmp_path / "ckpt.pt"
    torch.save({"state_dict": mlp.state_dict(), "epoch": 3}, path)
    source = resolve_model("mlp", weights=path)
    assert source.module is not None
    _same(source.module, mlp)


def test_model_dir_and_errors(mlp_dir: Path, weights: Path, tmp_path: Path) -> None:
    assert resolve_model(str(mlp_dir)).input_shape == (1, 28, 28)
    with pytest.raises(ConfigError, match="drop --weights"):
        resolve_model(str(mlp_dir), weights=weights)
    with pytest.raises(ConfigError, match="needs its trained weights"):
        resolve_model("mlp")
    with pytest.raises(ConfigError, match="neither a model directory"):
        resolve_model("not-a-model")
    with pytest.raises(ConfigError, match="cannot import model factory"):
        resolve_model("no_such_pkg.mod:build", weights=weights)
    with pytest.raises(CheckpointError, match="do not match the model"):
        resolve_model("cnn", weights=weights)
    with pytest.raises(CheckpointError, match="does not exist"):
        resolve_model("mlp", weights=tmp_path / "missing.safetensors")
    with pytest.raises(CheckpointError, match="is not a regular file"):
        resolve_model("mlp", weights=Path("/dev/null"))


def test_corrupt_onnx_is_a_checkpoint_error(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"\x08\x07garbage that is not a protobuf model\xff\xff")
    with pytest.raises(CheckpointError, match="not a valid ONNX model"):
        resolve_model(str(bad))
