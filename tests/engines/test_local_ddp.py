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
    shard_indices,
    train_distributed,
)
from jiasu.models import ModelSpec
from jiasu.train.evaluate import evaluate
from jiasu.train.optimizers import create_optimizer

from .conftest import same_weights


@pytest.mark.timeout(120)
def test_two_ranks_equal_one_process_on_the_joined_batches(mnist: object, tmp_path: Path) -> None:
    """DDP with 2 ranks × batch B must equal one process stepping on both ranks' batches."""
    train = mnist.train.take(400)  # type: ignore[attr-defined]
    spec = ModelSpec("mlp", {"dropout": 0.0})  # no randomness inside the model
    job = TrainJob(spec, InMemorySource(train), epochs=1, batch_size=16, optimizer="sgd", lr=0.1)
    result = train_distributed(job, engine="local", workers=2, storage_dir=tmp_path)

    torch.manual_seed(job.seed)
    reference = spec.build()
    optimizer = create_optimizer("sgd", reference.parameters(), lr=0.1)  # momentum 0.9
    shards = [shard_indices(len(train), rank, 2, job.seed) for rank in range(2)]
    # each rank's DataLoader shuffles its shard with the same seeded generator
    order = torch.randperm(shards[0].shape[0], generator=_loader_generator(job.seed))
    for start in range(0, order.shape[0], job.batch_size):
        local = order[start : start + job.batch_size]
        index = torch.cat([shards[0][local], shards[1][local]])
        loss = F.cross_entropy(reference(train.images[index]), train.labels[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    for name, tensor in reference.state_dict().items():
        torch.testing.assert_close(result.model.state_dict()[name], tensor, atol=2e-6, rtol=1e-5)


def _loader_generator(seed: int) -> torch.Generator:
    generator = torch.Generator().manual_seed(seed)
    torch.empty((), dtype=torch.int64).random_(generator=generator)  # DataLoader's base seed
    return generator


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
    job = dataclasses.replace(small_job, crash=crash, epochs=1)
    with pytest.raises(EngineError, match="local worker rank 0 was killed by SIGKILL"):
        train_distributed(job, engine="local", workers=2, storage_dir=tmp_path)
