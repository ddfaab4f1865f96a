"""The local engine: 2 real processes, gloo, spawned by torch's elastic launcher."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from jiasu.data import ImageDataset
from jiasu.engines import (
    CrashOnce,
    DistributedResult,
    EngineError,
    InMemorySource,
    TrainJob,
    train_distributed,
)
from jiasu.models import ModelSpec
from jiasu.train.evaluate import evaluate
from jiasu.train.settings import TrainSettings

from .conftest import joined_batches_reference, same_weights


@pytest.mark.timeout(120)
def test_two_ranks_equal_one_process_on_the_joined_batches(mnist: object, tmp_path: Path) -> None:
    """DDP with 2 ranks × batch B must equal one process stepping on both ranks' batches."""
    train = mnist.train.take(400)  # type: ignore[attr-defined]
    spec = ModelSpec("mlp", {"dropout": 0.0})  # no randomness inside the model
    settings = TrainSettings(epochs=1, batch_size=16, optimizer="sgd", lr=0.1)
    job = TrainJob(spec, InMemorySource(train), settings)
    result = train_distributed(job, engine="local", workers=2, storage_dir=tmp_path)

    torch.manual_seed(job.settings.seed)
    reference = joined_batches_reference(
        spec.build(), train.images, train.labels, F.cross_entropy, world=2, batch_size=16,
        seed=job.settings.seed, lr=0.1,
    )  # fmt: skip
    for name, tensor in reference.state_dict().items():
        torch.testing.assert_close(result.model.state_dict()[name], tensor, atol=2e-6, rtol=1e-5)


@pytest.mark.timeout(120)
def test_local_training_learns_and_reports(local_result: DistributedResult, mnist: object) -> None:
    last = local_result.history.last
    assert (local_result.workers, local_result.threads_per_worker) == (2, 1)
    assert len(local_result.history.epochs) == 2 and last.val_accuracy is not None
    assert last.val_accuracy > 0.85
    # the all-reduced validation accuracy is the accuracy of rank 0's model
    test: ImageDataset = mnist.test.take(1000)  # type: ignore[attr-defined]
    _, accuracy = evaluate(local_result.model, test.images, test.labels)
    assert accuracy == pytest.approx(last.val_accuracy, abs=1e-9)
    assert 0 < local_result.loop_seconds < local_result.total_seconds


@pytest.mark.timeout(180)
def test_killed_worker_resumes_from_last_checkpoint(
    small_job: TrainJob, local_result: DistributedResult, tmp_path: Path
) -> None:
    crash = CrashOnce(str(tmp_path / "killed-once"), rank=1, epoch=2, step=10)
    job = dataclasses.replace(small_job, crash=crash)
    result = train_distributed(
        job, engine="local", workers=2, max_failures=1, storage_dir=tmp_path / "storage"
    )
    assert (tmp_path / "killed-once").exists()  # the SIGKILL did happen
    assert result.resumed_from_epoch == 1
    assert (tmp_path / "storage" / "checkpoints" / "latest.json").is_file()
    reference = local_result.history.last.val_accuracy
    assert result.history.last.val_accuracy == pytest.approx(reference, abs=0.002)
    assert same_weights(result.model, local_result.model)  # exact resume, in fact


@pytest.mark.timeout(120)
def test_killed_worker_without_restarts_is_one_clear_error(
    small_job: TrainJob, tmp_path: Path
) -> None:
    crash = CrashOnce(str(tmp_path / "killed-once"), rank=0, epoch=1, step=0)
    settings = dataclasses.replace(small_job.settings, epochs=1)
    job = dataclasses.replace(small_job, crash=crash, settings=settings)
    with pytest.raises(EngineError, match="local worker rank 0 was killed by SIGKILL"):
        train_distributed(job, engine="local", workers=2, storage_dir=tmp_path)
