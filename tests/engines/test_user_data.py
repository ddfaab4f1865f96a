"""`jiasu train --engine local` on the user's own data, model and task (issue 13, item 7):
the workers read the table themselves, build the user's factory model, train through
`fit` with the data-parallel strategy, and stop together at a target accuracy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from jiasu.cli.main import main
from jiasu.data import read_training_data
from jiasu.engines import TrainJob, UserDataSource, train_distributed
from jiasu.train.losses import mean_squared_error
from jiasu.train.settings import TrainSettings

from .conftest import TABLE_RUN, trained_like_joined_batches, write_table


@pytest.mark.timeout(240)
def test_engine_local_trains_a_regression_table_like_one_process_on_the_joined_batches(
    user_models: str, tmp_path: Path
) -> None:
    """2 ranks × batch 16 on a CSV regression (not MNIST) equal one process stepping on
    both ranks' batches; the model is saved with its table signature and task."""
    table = write_table(tmp_path / "table.csv")
    saved, report = tmp_path / "model", tmp_path / "train.json"
    code = main([
        "train", "--model", f"{user_models}:tabular", "--data", str(table),
        "--engine", "local", *TABLE_RUN, "--save", str(saved), "--json", str(report), "--quiet",
    ])  # fmt: skip
    assert code == 0
    result = json.loads(report.read_text())
    assert result["task"]["kind"] == "regression" and result["epochs_run"] == 1
    assert set(result["test_metrics"]) >= {"mse", "mae", "r2"}
    assert result["evaluated_on"] == "validation"

    trained = trained_like_joined_batches(saved, table, user_models)
    train = read_training_data(table, target_column="y", seed=0).train  # the workers' split
    assert trained.task.kind == "regression" and trained.signature.names == train.signature.names
    # the validation figures are the whole validation split's, from rank 0's model
    val = read_training_data(table, target_column="y", seed=0).val
    assert val is not None
    with torch.no_grad():
        mse = float(mean_squared_error(trained.model(val.inputs[0]), val.targets))
    assert result["history"][-1]["metrics"]["val_mse"] == pytest.approx(mse, rel=1e-5)


@pytest.mark.timeout(240)
def test_engine_local_stops_every_rank_at_the_same_target_check(
    user_models: str, tmp_path: Path
) -> None:
    """With a target accuracy every rank checks it on the gathered outputs and stops at
    the same check of the same epoch, well before the epochs run out."""
    module = __import__(user_models)
    table = write_table(tmp_path / "labels.csv", classes=True)
    from jiasu.app.train import resolve_train_model

    spec = resolve_train_model(f"{user_models}:classifier", check=False)
    settings = TrainSettings(epochs=30, batch_size=16, lr=0.01, target_accuracy=0.9,
                             target_checks_per_epoch=2)  # fmt: skip
    logs = tmp_path / "ranks"
    logs.mkdir()
    job = TrainJob(spec, UserDataSource(str(table), target_column="y"), settings,
                   callbacks=(module.RankLog(str(logs)),))  # fmt: skip
    result = train_distributed(job, engine="local", workers=2, storage_dir=tmp_path / "s")

    history = result.history
    assert history.time_to_target_s is not None and history.stopped_early
    assert len(history.epochs) < 30
    assert history.accuracy_curve[-1][1] >= 0.9
    assert all(a < 0.9 for _, a in history.accuracy_curve[:-1])  # it stopped at the first
    ranks = sorted(p.read_text() for p in logs.iterdir())
    assert len(ranks) == 2 and ranks[0] == ranks[1]  # same epoch, same checks, same figures
    assert ranks[0].split()[0] == str(len(history.epochs))
