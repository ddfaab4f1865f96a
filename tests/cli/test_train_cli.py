"""`jiasu train` end to end, as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from jiasu.core.recipe import Recipe
from jiasu.models import load_model_dir
from jiasu.train.techniques import DeviceData, Threads


def jiasu(*args: str, timeout_s: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jiasu.cli.main", *args],
        capture_output=True, text=True, timeout=timeout_s, env=dict(os.environ),
    )  # fmt: skip


@pytest.mark.slow
def test_train_with_a_recipe_file_saves_a_model_and_writes_json(
    tmp_path: Path, mnist_dir: Path
) -> None:
    recipe = tmp_path / "recipe.toml"
    Recipe("mine", (Threads(), DeviceData())).save(recipe)
    out, model_dir = tmp_path / "train.json", tmp_path / "model"
    result = jiasu(
        "train", "--model", "mlp", "--recipe", str(recipe), "--epochs", "2",
        "--target-accuracy", "0.9", "--data-dir", str(mnist_dir),
        "--save", str(model_dir), "--json", str(out), "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    for key in ("recipe", "techniques", "epochs_run", "train_seconds", "time_to_target_s",
                "test_accuracy", "samples_per_s"):  # fmt: skip
        assert key in report
    assert report["recipe"]["name"] == "mine"
    assert [t["name"] for t in report["techniques"]["kept"]][:2] == [
        "threads(num_threads=None)", "device_data()",
    ]  # fmt: skip
    assert report["time_to_target_s"] is not None and report["time_to_target_s"] > 0
    assert report["epochs_run"] == 1  # 90% is reached within the first epoch
    assert report["accuracy_curve"][-1][1] >= 0.9
    saved = load_model_dir(model_dir)
    assert saved.spec.name == "mlp"
    assert saved.meta["metrics"]["test_accuracy"] == pytest.approx(report["test_accuracy"])
    assert saved.model(torch.zeros(1, 1, 28, 28)).shape == (1, 10)


@pytest.mark.slow
def test_train_auto_reports_kept_and_dropped_techniques(tmp_path: Path, mnist_dir: Path) -> None:
    out = tmp_path / "auto.json"
    result = jiasu(
        "train", "--model", "mlp", "--recipe", "auto", "--epochs", "1",
        "--data-dir", str(mnist_dir), "--json", str(out), "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    dropped = {d["name"]: d["reason"] for d in report["techniques"]["dropped"]}
    assert "cuda_graphs" in dropped and "CUDA" in dropped["cuda_graphs"]
    assert "channels_last" in dropped
    assert {p["name"] for p in report["probes"]} >= {"threads", "device_data", "compile"}
    assert report["test_accuracy"] > 0.9


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "resnet50"], "unknown model 'resnet50'"),
        (["--recipe", "turbo"], "unknown recipe 'turbo'"),
        (["--recipe", "missing.toml"], "does not exist"),
        (["--epochs", "0"], "--epochs"),
        (["--target-accuracy", "1.5"], "--target-accuracy"),
    ],
)
def test_bad_train_arguments_are_one_clear_line(
    args: list[str], message: str, mnist_dir: Path
) -> None:
    result = jiasu("train", *args, "--data-dir", str(mnist_dir), "--quiet")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert message in result.stderr


@pytest.mark.slow
def test_train_on_the_local_engine_with_two_workers(tmp_path: Path, mnist_dir: Path) -> None:
    out, model_dir = tmp_path / "ddp.json", tmp_path / "model"
    result = jiasu(
        "train", "--model", "mlp", "--recipe", "fast", "--epochs", "1", "--engine", "local",
        "--workers", "2", "--train-samples", "4000", "--data-dir", str(mnist_dir),
        "--json", str(out), "--save", str(model_dir), "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["epochs_run"] == 1
    assert report["test_accuracy"] > 0.8
    assert load_model_dir(model_dir).meta["metrics"]["workers"] == 2
