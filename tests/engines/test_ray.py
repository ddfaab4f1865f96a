"""Ray: Train and Data on a 2-node Ray cluster simulated on this machine.

`ray.cluster_utils.Cluster` starts a head node and a second node, 1 CPU each, with
their own raylets and object stores: the 2 training workers land on different nodes.
The fixture shuts down exactly that cluster.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from jiasu.engines import (
    CrashOnce,
    DistributedResult,
    TrainJob,
    predict_distributed,
    train_distributed,
)

from ..ray_cluster import two_node_cluster
from .conftest import TABLE_RUN, same_weights, trained_like_joined_batches, write_table

ray = pytest.importorskip("ray")
cluster_utils = pytest.importorskip("ray.cluster_utils")

# Ray Train registers a reported checkpoint when its controller next polls the workers
# (every 2 s by default); an epoch here lasts under a second, so poll faster or the
# worker is killed before its epoch-1 checkpoint counts.
_ENV = {"RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.2"}


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    """The module's 2-node cluster (`tests/ray_cluster.py`), stopped when it ends."""
    with two_node_cluster(_ENV) as address:
        yield address


@pytest.mark.timeout(240)
def test_ray_train_on_two_nodes_matches_local(
    ray_address: str, small_job: TrainJob, local_result: DistributedResult, tmp_path: Path
) -> None:
    assert len([n for n in ray.nodes() if n["Alive"]]) == 2
    result = train_distributed(
        small_job, engine="ray", workers=2, address=ray_address, threads_per_worker=1,
        storage_dir=tmp_path,
    )  # fmt: skip
    assert same_weights(result.model, local_result.model)  # same seeded result
    assert result.history.last.val_accuracy == local_result.history.last.val_accuracy
    assert list(tmp_path.glob("*/scratch")) == []  # the workers' scratch went with the run


@pytest.mark.timeout(300)
def test_ray_restarts_a_killed_worker_from_its_checkpoint(
    ray_address: str, small_job: TrainJob, local_result: DistributedResult, tmp_path: Path
) -> None:
    crash = CrashOnce(str(tmp_path / "killed-once"), rank=1, epoch=2, step=25)
    result = train_distributed(
        dataclasses.replace(small_job, crash=crash), engine="ray", workers=2,
        address=ray_address, threads_per_worker=1, max_failures=1, storage_dir=tmp_path / "s",
    )  # fmt: skip
    assert (tmp_path / "killed-once").exists()
    assert result.resumed_from_epoch == 1
    reference = local_result.history.last.val_accuracy
    assert result.history.last.val_accuracy == pytest.approx(reference, abs=0.002)
    assert same_weights(result.model, local_result.model)


@pytest.mark.timeout(180)
def test_ray_data_predictions_equal_one_process(
    ray_address: str, local_result: DistributedResult, tmp_path: Path, mnist: object
) -> None:
    model_dir = local_result.save(tmp_path / "model")
    images = mnist.test.take(2000).images  # type: ignore[attr-defined]
    expected = predict_distributed(model_dir, images, engine="local")
    # 2 CPUs in the cluster: the pool gets 1 actor and leaves 1 CPU free (no deadlock)
    got = predict_distributed(model_dir, images, engine="ray", workers=2, address=ray_address)
    assert got.shape == (2000, 10)
    assert np.array_equal(got, expected)


@pytest.mark.timeout(240)
def test_ray_predicts_a_two_input_artifact_like_one_process(
    ray_address: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """`jiasu predict --engine ray` on a model of int64 ids and mask (an .npz by name):
    every input reaches the workers with its dtype, rows come back in order."""
    from jiasu.cli.main import main

    from ..predict_models import text_artifact, text_inputs, text_logits

    artifact, model = text_artifact(tmp_path_factory)
    ids, mask = text_inputs(300)
    np.savez(tmp_path / "batch.npz", input_ids=ids, attention_mask=mask)
    args = ["predict", str(artifact), "--input", str(tmp_path / "batch.npz"), "--batch-size", "32"]
    assert main([*args, "--output", str(tmp_path / "here.npy")]) == 0
    there = tmp_path / "there.npy"
    engine = ["--engine", "ray", "--workers", "2", "--address", ray_address]
    assert main([*args, "--output", str(there), *engine]) == 0
    np.testing.assert_array_equal(np.load(there), np.load(tmp_path / "here.npy"))
    np.testing.assert_allclose(np.load(there), text_logits(model, ids, mask), atol=1e-5)


@pytest.mark.timeout(300)
def test_ray_trains_the_users_table_and_model_like_the_joined_batches(
    ray_address: str, user_models: str, tmp_path: Path
) -> None:
    """`jiasu train --engine ray --data table.csv`: the workers on two nodes read the table
    and import the user's module themselves; 2 ranks × batch 16 equal one process on the
    joined batches."""
    from jiasu.cli.main import main

    table = write_table(tmp_path / "table.csv")
    saved = tmp_path / "model"
    code = main([
        "train", "--model", f"{user_models}:tabular", "--data", str(table),
        "--engine", "ray", "--address", ray_address, *TABLE_RUN, "--save", str(saved), "--quiet",
    ])  # fmt: skip
    assert code == 0
    trained_like_joined_batches(saved, table, user_models)
