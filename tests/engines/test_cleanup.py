"""A run leaves nothing in the temporary folder: after success, failure or Ctrl-C.

Each test points the engine's temporary folder (TMPDIR) at a folder of its own, so that
other tests running meanwhile cannot interfere, and looks in it after the run.
"""

from __future__ import annotations

import _thread
import dataclasses
import signal
import tempfile
import threading
from pathlib import Path

import pytest

from jiasu.data import DatasetSplits
from jiasu.engines import CrashOnce, EngineError, InMemorySource, TrainJob, train_distributed
from jiasu.models import ModelSpec
from jiasu.train.settings import TrainSettings

SCRATCH_PREFIXES = ("jiasu-", "torchelastic_")


@pytest.fixture
def temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))  # for the spawned workers
    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR in this process
    return folder


def leftovers(temp_dir: Path) -> list[str]:
    """The run's scratch left in `temp_dir` (torch's compile cache, torchinductor_*, may stay)."""
    return sorted(p.name for p in temp_dir.iterdir() if p.name.startswith(SCRATCH_PREFIXES))


@pytest.fixture
def tiny_job(mnist: DatasetSplits) -> TrainJob:
    return TrainJob(
        ModelSpec("mlp"),
        InMemorySource(mnist.train.take(64)),
        TrainSettings(epochs=1, batch_size=16),
    )


@pytest.mark.timeout(120)
def test_a_run_removes_its_temporary_storage(temp_dir: Path, tiny_job: TrainJob) -> None:
    result = train_distributed(tiny_job, engine="local", workers=1)
    assert len(result.history.epochs) == 1
    assert leftovers(temp_dir) == []


@pytest.mark.timeout(120)
def test_a_failed_run_removes_its_temporary_storage(
    temp_dir: Path, tiny_job: TrainJob, tmp_path: Path
) -> None:
    crash = CrashOnce(str(tmp_path / "killed-once"), rank=0, epoch=1, step=0)
    with pytest.raises(EngineError, match="local worker rank 0 was killed by SIGKILL"):
        train_distributed(dataclasses.replace(tiny_job, crash=crash), engine="local", workers=1)
    assert leftovers(temp_dir) == []


@pytest.mark.timeout(120)
def test_an_interrupted_run_removes_its_temporary_storage(
    temp_dir: Path, tiny_job: TrainJob
) -> None:
    endless = dataclasses.replace(
        tiny_job, settings=dataclasses.replace(tiny_job.settings, epochs=100_000)
    )
    started = threading.Event()

    def interrupt_once_the_worker_runs() -> None:
        while not started.wait(0.05):
            if any(temp_dir.glob("jiasu-train-*/scratch-rank0")):
                started.set()
                _thread.interrupt_main()  # Ctrl-C in the launching process

    handler = signal.getsignal(signal.SIGINT)
    watcher = threading.Thread(target=interrupt_once_the_worker_runs, daemon=True)
    watcher.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            train_distributed(endless, engine="local", workers=1)
    finally:
        started.set()
        watcher.join()
    assert leftovers(temp_dir) == []
    assert signal.getsignal(signal.SIGINT) is handler  # torch's launcher does not keep its own


@pytest.mark.timeout(120)
def test_a_given_storage_keeps_its_checkpoints_and_loses_the_scratch(
    tiny_job: TrainJob, tmp_path: Path
) -> None:
    mine = tmp_path / "storage" / "scratch-rank0-notes"  # the user's, by a similar name
    mine.mkdir(parents=True)
    train_distributed(tiny_job, engine="local", workers=1, storage_dir=tmp_path / "storage")
    assert (tmp_path / "storage" / "checkpoints" / "latest.json").is_file()
    assert sorted(p.name for p in (tmp_path / "storage").iterdir()) == [
        "checkpoints",
        "scratch-rank0-notes",
    ]
