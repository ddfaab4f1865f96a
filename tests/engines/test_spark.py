"""Spark: TorchDistributor and predict_batch_udf on a local[2] session started here."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from jiasu.engines import (
    CrashOnce,
    DistributedResult,
    TrainJob,
    predict_distributed,
    train_distributed,
)

from .conftest import TABLE_RUN, same_weights, trained_like_joined_batches, write_table

LOOPBACK = ("127.0.0.1", "::1", "::ffff:127.0.0.1")

pytest.importorskip("pyspark")
if shutil.which("java") is None:
    pytest.skip("Spark needs Java (17); none on PATH", allow_module_level=True)


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    from jiasu.engines.spark_torch import spark_session

    with spark_session(None, cores=2) as session:  # stopped when the module ends
        yield session


@pytest.mark.timeout(240)
def test_spark_training_matches_local(
    spark: Any, small_job: TrainJob, local_result: DistributedResult, tmp_path: Path
) -> None:
    result = train_distributed(
        small_job, engine="spark", workers=2, threads_per_worker=1, storage_dir=tmp_path
    )
    assert same_weights(result.model, local_result.model)
    assert list(tmp_path.glob("scratch-rank*")) == []  # the workers' scratch went with the run


@pytest.mark.timeout(300)
def test_spark_resubmits_after_a_killed_worker(
    spark: Any, small_job: TrainJob, local_result: DistributedResult, tmp_path: Path
) -> None:
    crash = CrashOnce(str(tmp_path / "killed-once"), rank=1, epoch=2, step=10)
    result = train_distributed(
        dataclasses.replace(small_job, crash=crash), engine="spark", workers=2,
        threads_per_worker=1, max_failures=1, storage_dir=tmp_path / "s",
    )  # fmt: skip
    assert (tmp_path / "killed-once").exists()
    assert result.resumed_from_epoch == 1
    reference = local_result.history.last.val_accuracy
    assert result.history.last.val_accuracy == pytest.approx(reference, abs=0.002)
    assert same_weights(result.model, local_result.model)


@pytest.mark.timeout(180)
def test_spark_predictions_equal_one_process(
    spark: Any, local_result: DistributedResult, tmp_path: Path, mnist: object
) -> None:
    model_dir = local_result.save(tmp_path / "model")
    images = mnist.test.take(2000).images  # type: ignore[attr-defined]
    expected = predict_distributed(model_dir, images, engine="local")
    got = predict_distributed(model_dir, images, engine="spark", workers=2)
    assert np.array_equal(got, expected)


@pytest.mark.timeout(60)
def test_local_spark_listens_on_loopback_only(spark: Any) -> None:
    """The driver's RPC, block manager and Python workers bind 127.0.0.1; no UI runs."""
    psutil = pytest.importorskip("psutil")
    assert spark.sparkContext.parallelize(range(4), 2).map(lambda x: x * 2).sum() == 12
    me = psutil.Process()
    found = [
        (process.name(), conn.laddr.ip)
        for process in [me, *me.children(recursive=True)]
        for conn in process.net_connections(kind="inet")
        if conn.status == psutil.CONN_LISTEN
    ]
    assert any(name == "java" for name, _ in found)
    assert [entry for entry in found if entry[1] not in LOOPBACK] == []
    assert spark.sparkContext.uiWebUrl is None


@pytest.mark.timeout(300)
def test_spark_predicts_a_two_input_artifact_like_one_process(
    spark: Any, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """`jiasu predict --engine spark` on a model of int64 ids and mask: one array column per
    input, int64 kept; the logits come back in order, bit for bit."""
    from jiasu.cli.main import main

    from ..predict_models import text_artifact, text_inputs, text_logits

    artifact, model = text_artifact(tmp_path_factory)
    ids, mask = text_inputs(300)
    np.savez(tmp_path / "batch.npz", input_ids=ids, attention_mask=mask)
    args = ["predict", str(artifact), "--input", str(tmp_path / "batch.npz"), "--batch-size", "32"]
    assert main([*args, "--output", str(tmp_path / "here.npy")]) == 0
    there = tmp_path / "there.npy"
    assert main([*args, "--output", str(there), "--engine", "spark", "--workers", "2"]) == 0
    np.testing.assert_array_equal(np.load(there), np.load(tmp_path / "here.npy"))
    np.testing.assert_allclose(np.load(there), text_logits(model, ids, mask), atol=1e-5)


@pytest.mark.timeout(300)
def test_spark_trains_the_users_table_and_model_like_the_joined_batches(
    spark: Any, user_models: str, tmp_path: Path
) -> None:
    """`jiasu train --engine spark --data table.csv`: each barrier task reads the table and
    imports the user's module itself; 2 ranks × batch 16 equal one process on the joined
    batches."""
    from jiasu.cli.main import main

    table = write_table(tmp_path / "table.csv")
    saved = tmp_path / "model"
    code = main([
        "train", "--model", f"{user_models}:tabular", "--data", str(table),
        "--engine", "spark", *TABLE_RUN, "--save", str(saved), "--quiet",
    ])  # fmt: skip
    assert code == 0
    trained_like_joined_batches(saved, table, user_models)
