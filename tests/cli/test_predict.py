"""`jiasu predict` on models of other signatures than MNIST's: a tabular MLP read from
.csv and .parquet, a two-input text classifier (int64 ids and mask, dict output) read from
.npz; outputs against the eager model, and the refusals as one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from jiasu.cli.main import main

from ..predict_models import (
    FEATURES,
    save_optimized,
    tabular_artifact,
    tabular_mlp,
    text_artifact,
    text_inputs,
    text_logits,
)

pytest.importorskip("onnxruntime")
pd = pytest.importorskip("pandas")


@pytest.fixture(scope="module")
def tabular(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module]:
    return tabular_artifact(tmp_path_factory)


@pytest.fixture(scope="module")
def text(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module]:
    return text_artifact(tmp_path_factory)


def jiasu(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _failed_cleanly(result: tuple[int, str, str], *messages: str) -> None:
    code, _, err = result
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for message in messages:
        assert message in err, err


def _rows(n: int = 40) -> tuple[np.ndarray, np.ndarray, object]:
    rng = np.random.default_rng(0)
    features = rng.standard_normal((n, FEATURES)).astype(np.float32)
    labels = rng.integers(0, 2, n)
    frame = pd.DataFrame({f"f{i}": features[:, i] for i in range(FEATURES)})
    frame.insert(5, "target", labels)  # the label column sits among the features
    return features, labels, frame


def test_tabular_model_predicts_from_csv_and_parquet(
    tabular: tuple[Path, torch.nn.Module], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    artifact, model = tabular
    features, _, frame = _rows()
    frame.to_csv(tmp_path / "rows.csv", index=False, float_format="%.9g")  # exact float32
    frame.to_parquet(tmp_path / "rows.parquet", index=False)
    with torch.inference_mode():
        expected = model(torch.from_numpy(features)).numpy()

    scores_csv = tmp_path / "scores.csv"
    code, _, err = jiasu(capsys, "predict", artifact, "--input", tmp_path / "rows.csv",
                         "--label-column", "target", "--output", scores_csv)  # fmt: skip
    assert code == 0, err
    assert f"wrote outputs for 40 inputs to {tmp_path / 'scores.csv'}" in err
    lines = (tmp_path / "scores.csv").read_text().splitlines()
    assert lines[0] == "out_0,out_1" and len(lines) == 41
    scores = np.loadtxt(tmp_path / "scores.csv", delimiter=",", skiprows=1, dtype=np.float32)
    np.testing.assert_allclose(scores, expected, atol=1e-5)

    code, out, err = jiasu(capsys, "predict", artifact, "--input", tmp_path / "rows.parquet",
                           "--label-column", "target")  # fmt: skip
    assert code == 0, err
    assert out.split() == [str(c) for c in scores.argmax(axis=1)]  # classes, one per line


def test_two_input_model_predicts_from_npz(
    text: tuple[Path, torch.nn.Module], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    artifact, model = text
    ids, mask = text_inputs()
    # the file's order is not the model's, and it carries labels: names decide
    np.savez(tmp_path / "batch.npz", attention_mask=mask, labels=np.arange(25) % 3, input_ids=ids)
    expected = text_logits(model, ids, mask)

    code, _, err = jiasu(capsys, "predict", artifact, "--input", tmp_path / "batch.npz",
                         "--output", tmp_path / "logits.npy", "--batch-size", "8")  # fmt: skip
    assert code == 0, err
    logits = np.load(tmp_path / "logits.npy")
    assert logits.shape == (25, 3) and logits.dtype == np.float32
    np.testing.assert_allclose(logits, expected, atol=1e-5)

    code, _, err = jiasu(capsys, "predict", artifact, "--input", tmp_path / "batch.npz",
                         "--output", tmp_path / "classes.csv", "--classes")  # fmt: skip
    assert code == 0, err
    lines = (tmp_path / "classes.csv").read_text().splitlines()
    assert lines == ["class", *(str(c) for c in logits.argmax(axis=1))]


def test_inputs_that_do_not_match_the_signature_are_one_line(
    text: tuple[Path, torch.nn.Module],
    tabular: tuple[Path, torch.nn.Module],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ids, _ = text_inputs(3)
    np.savez(tmp_path / "ids-only.npz", input_ids=ids)
    _failed_cleanly(
        jiasu(capsys, "predict", text[0], "--input", tmp_path / "ids-only.npz"),
        "lacks attention_mask",
        "the model takes input_ids:int64[B,12], attention_mask:int64[B,12]",
    )
    _, _, frame = _rows(5)
    frame.to_csv(tmp_path / "rows.csv", index=False)
    _failed_cleanly(  # the label column counted as a feature
        jiasu(capsys, "predict", tabular[0], "--input", tmp_path / "rows.csv"),
        "has 31 numeric feature columns, but the model takes 30",
        "--label-column",
    )
    _failed_cleanly(
        jiasu(capsys, "predict", text[0], "--input", tmp_path / "rows.csv"),
        "is a table",
        "input_ids:int64[B,12], attention_mask:int64[B,12]",
    )
    bad_output = ["--input", tmp_path / "ids-only.npz", "--output", tmp_path / "out.txt"]
    _failed_cleanly(jiasu(capsys, "predict", text[0], *bad_output), "must end in .npy or .csv")


def test_classes_only_for_a_classifier(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tabular_mlp(outputs=1)  # a regression: one score per row, no classes
    artifact = save_optimized(model, torch.randn(4, FEATURES), tmp_path / "art", ("torch",))
    features, _, _ = _rows(6)
    np.save(tmp_path / "x.npy", features)
    _failed_cleanly(
        jiasu(capsys, "predict", artifact, "--input", tmp_path / "x.npy"),
        "output has shape (N, 1), not (N, classes)",
        "pass --output out.npy or out.csv",
    )
    classes = ["--input", tmp_path / "x.npy", "--output", tmp_path / "c.npy", "--classes"]
    _failed_cleanly(jiasu(capsys, "predict", artifact, *classes), "drop --classes")
    assert not (tmp_path / "c.npy").exists()
    code, _, err = jiasu(capsys, "predict", artifact, "--input", tmp_path / "x.npy",
                         "--output", tmp_path / "y.npy")  # fmt: skip
    assert code == 0, err
    with torch.inference_mode():
        expected = model(torch.from_numpy(features)).numpy()
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), expected, atol=1e-6)
