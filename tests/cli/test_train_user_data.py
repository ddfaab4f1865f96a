"""`jiasu train --data` on the user's own data and task, saved with its signature and
task, so `jiasu optimize DIR` and `jiasu predict DIR` need no more flags."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from jiasu.cli.main import main

from ..user_code import user_module

MODELS = textwrap.dedent(
    """
    import torch
    from torch import nn


    def tabular():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 1))


    def tiny_bert():
        from transformers import BertConfig, BertForSequenceClassification

        torch.manual_seed(0)
        config = BertConfig(
            vocab_size=50, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
            intermediate_size=64, max_position_embeddings=32, num_labels=2,
        )
        return BertForSequenceClassification(config)


    def tiny_cnn():
        torch.manual_seed(0)
        return nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(4, 3),
        )
    """
)


@pytest.fixture
def factories(tmp_path: Path) -> Iterator[str]:
    with user_module(tmp_path / "pkg", "user_train_models", MODELS) as name:
        yield name


def _table(path: Path, rows: int = 240) -> np.ndarray:
    import pandas as pd

    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, 5)).astype(np.float32)
    weights = np.array([1.5, -2.0, 0.5, 0.0, 1.0], dtype=np.float32)
    price = x @ weights + 0.3 + rng.normal(0, 0.05, rows).astype(np.float32)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(5)])
    frame["price"] = price
    frame.to_csv(path, index=False)
    return x


def test_a_regression_on_a_csv_trains_saves_and_is_optimized_and_predicted_without_flags(
    factories: str, tmp_path: Path
) -> None:
    x = _table(tmp_path / "table.csv")
    saved, report = tmp_path / "model", tmp_path / "train.json"
    code = main([
        "train", "--model", f"{factories}:tabular", "--data", str(tmp_path / "table.csv"),
        "--target-column", "price", "--epochs", "15", "--lr", "0.01", "--save", str(saved),
        "--json", str(report), "--quiet",
    ])  # fmt: skip
    assert code == 0
    result = json.loads(report.read_text())
    assert result["task"]["kind"] == "regression"
    assert result["evaluated_on"] == "validation"  # a CSV has no test split: 20% held out
    metrics = result["test_metrics"]
    assert {"mse", "mae", "r2"} <= set(metrics) and metrics["r2"] > 0.9, metrics
    assert result["test_accuracy"] is None
    described = json.loads((saved / "model.json").read_text())
    assert described["format_version"] == 2
    assert described["model_spec"] == {"factory": f"{factories}:tabular"}
    assert described["task"]["kind"] == "regression"
    # the folder names the factory: rebuilding it imports code only with --trust-code
    assert main(["predict", str(saved), "--input", str(tmp_path / "table.csv"), "--output",
                 str(tmp_path / "p.npy")]) == 2  # fmt: skip
    assert main(["predict", str(saved), "--input", str(tmp_path / "table.csv"),
                 "--label-column", "price", "--output", str(tmp_path / "p.npy"),
                 "--trust-code"]) == 0  # fmt: skip
    predictions = np.load(tmp_path / "p.npy").reshape(-1)
    assert predictions.shape == (len(x),)
    truth = x @ np.array([1.5, -2.0, 0.5, 0.0, 1.0], dtype=np.float32) + 0.3
    assert float(np.mean((predictions - truth) ** 2)) < 0.1 * float(np.var(truth))
    out = tmp_path / "artifact"
    code = main([
        "optimize", str(saved), "--trust-code", "--data", str(tmp_path / "table.csv"),
        "--label-column", "price", "--backends", "torch,onnxruntime", "--no-isolate",
        "--measure-s", "0.2", "--out", str(out), "--quiet",
    ])  # fmt: skip
    assert code == 0
    optimized = json.loads((out / "report.json").read_text())
    assert optimized["task"]["kind"] == "regression"  # the model directory's own task
    assert optimized["signature"]["inputs"][0]["shape"][1:] == [5]


def test_an_image_folder_trains_a_classifier_of_its_own_size_and_classes(
    factories: str, tmp_path: Path
) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for index, name in enumerate(("cat", "dog", "owl")):
        folder = tmp_path / "photos" / name
        folder.mkdir(parents=True)
        for i in range(12):
            pixels = np.zeros((20, 24, 3), dtype=np.uint8)
            pixels[..., index] = 200  # each class its own colour: learnable
            pixels += rng.integers(0, 40, pixels.shape, dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}.png")
    saved, report = tmp_path / "model", tmp_path / "train.json"
    code = main([
        "train", "--model", f"{factories}:tiny_cnn", "--data", str(tmp_path / "photos"),
        "--epochs", "12", "--batch-size", "8", "--lr", "0.02", "--save", str(saved),
        "--json", str(report), "--quiet",
    ])  # fmt: skip
    assert code == 0
    result = json.loads(report.read_text())
    task = result["task"]
    assert (task["kind"], task["metric"], task["classes"]) == ("classification", "accuracy", 3)
    assert result["test_metrics"]["accuracy"] > 0.6, result["test_metrics"]
    described = json.loads((saved / "model.json").read_text())
    assert described["classes"] == ["cat", "dog", "owl"]
    assert described["signature"]["inputs"][0]["shape"][1:] == [3, 20, 24]


@pytest.mark.parametrize(
    ("extra", "phrase"),
    [
        (["--target-column", "nope"], "nope"),
        (["--resize", "abc"], "--resize"),
        (["--target-column", "price", "--target-metric", "r2"], "NAME=VALUE"),
        (["--target-column", "price", "--target-metric", "mse=-1"], "must be positive"),
    ],
)
def test_bad_user_data_options_are_one_sentence_before_training(
    factories: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    phrase: str,
) -> None:
    _table(tmp_path / "table.csv", rows=20)
    args = ["train", "--model", f"{factories}:tabular", "--data", str(tmp_path / "table.csv")]
    assert main([*args, *extra]) == 2
    err = capsys.readouterr().err
    assert phrase in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_a_regression_stops_at_its_target_metric_and_reports_the_time_to_it(
    factories: str, tmp_path: Path
) -> None:
    _table(tmp_path / "table.csv")
    report = tmp_path / "train.json"
    code = main([
        "train", "--model", f"{factories}:tabular", "--data", str(tmp_path / "table.csv"),
        "--target-column", "price", "--epochs", "40", "--lr", "0.01",
        "--target-metric", "r2=0.8", "--json", str(report), "--quiet",
    ])  # fmt: skip
    assert code == 0
    result = json.loads(report.read_text())
    assert result["target_metric"] == "r2" and result["target_accuracy"] == 0.8
    assert result["time_to_target_s"] is not None and result["stopped_early"]
    assert result["epochs_run"] < 40
    assert result["accuracy_curve"][-1][1] >= 0.8  # the curve is R²'s
    # a metric the task does not report is refused before any training
    code = main([
        "train", "--model", f"{factories}:tabular", "--data", str(tmp_path / "table.csv"),
        "--target-column", "price", "--target-metric", "accuracy=0.9", "--quiet",
    ])  # fmt: skip
    assert code == 2


def test_data_options_without_data_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--target-column", "price"]) == 2
    assert "--data" in capsys.readouterr().err


def test_a_transformers_classifier_trains_on_token_ids_from_an_npz(
    factories: str, tmp_path: Path
) -> None:
    pytest.importorskip("transformers")
    rng = np.random.default_rng(0)
    ids = rng.integers(2, 50, (96, 12)).astype(np.int64)
    y = (ids[:, 0] >= 26).astype(np.int64)  # the first token decides the class: learnable
    mask = np.ones_like(ids)
    np.savez(tmp_path / "tokens.npz", input_ids=ids, attention_mask=mask, y=y)
    saved, report = tmp_path / "model", tmp_path / "train.json"
    code = main([
        "train", "--model", f"{factories}:tiny_bert", "--data", str(tmp_path / "tokens.npz"),
        "--epochs", "8", "--batch-size", "16", "--lr", "0.005", "--save", str(saved),
        "--json", str(report), "--quiet",
    ])  # fmt: skip
    assert code == 0
    result = json.loads(report.read_text())
    assert result["task"]["kind"] == "classification"
    described = json.loads((saved / "model.json").read_text())
    names = [i["name"] for i in described["signature"]["inputs"]]
    assert names == ["input_ids", "attention_mask"]
    assert [i["dtype"] for i in described["signature"]["inputs"]] == ["int64", "int64"]
    out = tmp_path / "p.npy"
    assert main(["predict", str(saved), "--input", str(tmp_path / "tokens.npz"), "--output",
                 str(out), "--trust-code"]) == 0  # fmt: skip
    logits = np.load(out)
    assert logits.shape == (96, 2)
    first_loss = result["history"][0]["train_loss"]
    assert result["history"][-1]["train_loss"] < first_loss


@pytest.mark.parametrize("model", ["tabular", "tiny_bert"])
def test_recipe_auto_probes_the_model_as_it_trains_a_regression_or_a_transformer(
    factories: str, tmp_path: Path, model: str
) -> None:
    """auto's probes call the model through its signature with the task's loss: a float
    regression target and a ModelOutput failed there once (cross-entropy, raw outputs)."""
    if model == "tabular":
        _table(tmp_path / "data.csv", rows=64)
        data = ["--data", str(tmp_path / "data.csv"), "--target-column", "price"]
    else:
        pytest.importorskip("transformers")
        ids = np.random.default_rng(0).integers(2, 50, (48, 12)).astype(np.int64)
        y = (ids[:, 0] >= 26).astype(np.int64)
        np.savez(tmp_path / "t.npz", input_ids=ids, attention_mask=np.ones_like(ids), y=y)
        data = ["--data", str(tmp_path / "t.npz")]
    report = tmp_path / "r.json"
    code = main([
        "train", "--model", f"{factories}:{model}", *data, "--recipe", "auto", "--epochs", "1",
        "--probe-budget", "3", "--json", str(report), "--quiet",
    ])  # fmt: skip
    assert code == 0
    probes = json.loads(report.read_text())["probes"]
    assert probes and all(p["outcome"] for p in probes)
