from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from jiasu.core.errors import CheckpointError
from jiasu.models import ModelSpec, load_model_dir, save_model_dir


def test_model_dir_round_trip_gives_the_same_outputs(tmp_path: Path) -> None:
    torch.manual_seed(0)
    spec = ModelSpec("cnn", {"width": 8})
    model = spec.build().eval()
    x = torch.rand(4, 1, 28, 28)
    save_model_dir(tmp_path / "m", model, spec, metrics={"test_accuracy": 0.5})
    saved = load_model_dir(tmp_path / "m")
    assert saved.spec == spec and saved.input_shape == (1, 28, 28)
    assert saved.meta["metrics"] == {"test_accuracy": 0.5}
    torch.testing.assert_close(saved.model(x), model(x), rtol=0, atol=0)
    save_model_dir(tmp_path / "m", model, spec)  # replacing an existing one works
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_bad_model_dirs_are_named(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model_dir(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="not a jiasu model directory"):
        load_model_dir(tmp_path / "empty")
    spec = ModelSpec("mlp")
    save_model_dir(tmp_path / "m", spec.build(), spec)
    (tmp_path / "m" / "model.safetensors").write_bytes(b"\x80\x04pickle-payload")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_model_dir(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    meta["format_version"] = 99
    (tmp_path / "m" / "model.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="format version 99"):
        load_model_dir(tmp_path / "m")


def test_a_format_1_model_dir_still_loads_as_the_mnist_classifier_it_was(tmp_path: Path) -> None:
    spec = ModelSpec("mlp", {"num_classes": 7})
    save_model_dir(tmp_path / "m", spec.build(), spec)
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert meta["format_version"] == 2 and meta["task"]["classes"] == 7  # the spec's own
    for key in ("signature", "task", "classes"):
        del meta[key]
    meta.update(format_version=1, input_shape=[1, 28, 28], num_classes=7)
    (tmp_path / "m" / "model.json").write_text(json.dumps(meta))
    saved = load_model_dir(tmp_path / "m")
    assert saved.input_shape == (1, 28, 28) and saved.signature.names == ("input",)
    assert saved.task.kind == "classification" and saved.task.classes == 7
