"""Fixtures for the engine tests: one small job, its local 2-process result, clusters.

Every cluster here is started by the fixture and stopped by it, by its own handle
(Ray's `Cluster.shutdown`, the PIDs of the Spark daemons we launched): never
`ray stop` or a broad kill.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from jiasu.engines import DistributedResult, MnistSource, TrainJob, train_distributed
from jiasu.models import ModelSpec
from jiasu.train.settings import TrainSettings

from ..user_code import user_module

# Starting a JVM daemon took 62 s on a 2-core machine at load 17 (5 s when quiet):
# generous, and still bounded, so a cluster that cannot start fails the test.
START_TIMEOUT_S = 240
TRAIN_SAMPLES = 2000
VAL_SAMPLES = 1000


@pytest.fixture(scope="session")
def small_job(mnist_dir: Path) -> TrainJob:
    """2,000 MNIST images, 2 epochs of the small CNN: a few seconds per run on 2 cores."""
    source = MnistSource(str(mnist_dir), train_samples=TRAIN_SAMPLES, val_samples=VAL_SAMPLES)
    return TrainJob(ModelSpec("cnn"), source, TrainSettings(epochs=2, batch_size=32, seed=0))


@pytest.fixture(scope="session")
def local_result(
    small_job: TrainJob, tmp_path_factory: pytest.TempPathFactory
) -> DistributedResult:
    """The reference every engine must reproduce: 2 local processes, gloo."""
    storage = tmp_path_factory.mktemp("local-reference")
    return train_distributed(small_job, engine="local", workers=2, storage_dir=storage)


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s} s")


class SparkStandalone:
    """A Spark standalone master and workers on 127.0.0.1, from the pyspark package's jars."""

    def __init__(self, workers: int, log_dir: Path) -> None:
        import pyspark

        self.spark_home = Path(pyspark.__file__).parent
        self.port = free_port()
        self.address = f"spark://127.0.0.1:{self.port}"
        self.processes: list[subprocess.Popen[bytes]] = []
        env = {
            **os.environ,
            "SPARK_HOME": str(self.spark_home),
            "SPARK_LOCAL_IP": "127.0.0.1",
            "PYSPARK_PYTHON": sys.executable,
            "SPARK_WORKER_DIR": str(log_dir / "work"),
        }
        try:  # whatever started is stopped if the cluster does not come up
            self._start_cluster(workers, env, log_dir)
        except BaseException:
            self.stop()
            raise

    def _start_cluster(self, workers: int, env: dict[str, str], log_dir: Path) -> None:
        master = ["--host", "127.0.0.1", "--port", str(self.port), "--webui-port", str(free_port())]
        self._start("org.apache.spark.deploy.master.Master", master, env, log_dir / "master.log")
        wait_for_port(self.port, timeout_s=START_TIMEOUT_S)
        for i in range(workers):
            args = ["--host", "127.0.0.1", "--cores", "1", "--memory", "2g",
                    "--webui-port", str(free_port()), self.address]  # fmt: skip
            self._start("org.apache.spark.deploy.worker.Worker", args, env, log_dir / f"w{i}.log")
        self._wait_registered(log_dir, workers, timeout_s=START_TIMEOUT_S)

    def _start(self, main: str, args: list[str], env: dict[str, str], log: Path) -> None:
        command = [str(self.spark_home / "bin" / "spark-class"), main, *args]
        with open(log, "wb") as out:
            self.processes.append(
                subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
            )

    def _wait_registered(self, log_dir: Path, workers: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            logs = [(log_dir / f"w{i}.log").read_text(errors="replace") for i in range(workers)]
            if all("Successfully registered with master" in text for text in logs):
                return
            time.sleep(0.5)
        raise TimeoutError(f"Spark workers did not register within {timeout_s} s; see {log_dir}")

    def stop(self) -> None:
        for process in reversed(self.processes):  # workers first, then the master
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="module")
def spark_standalone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkStandalone]:
    pytest.importorskip("pyspark")
    cluster = SparkStandalone(workers=2, log_dir=tmp_path_factory.mktemp("spark-standalone"))
    try:
        yield cluster
    finally:
        cluster.stop()


# --- the user's own data: a small table and the user's model module -------------------
USER_MODELS = '''
from pathlib import Path

import torch
from torch import nn

from jiasu.train import Callback


def tabular():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 1))


def classifier():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 2))


class RankLog(Callback):
    """Writes, on every rank, the epochs it ran and the target checks it made."""

    def __init__(self, folder):
        self.folder = folder

    def on_train_end(self, run):
        import torch.distributed as dist

        curve = [round(a, 6) for _, a in run.history.accuracy_curve]
        Path(self.folder, f"rank{dist.get_rank()}").write_text(f"{run.epoch} {curve}")
'''


@pytest.fixture
def user_models(tmp_path: Path) -> Iterator[str]:
    """The user's module (`tabular`, `classifier`, `RankLog`), importable as a user's
    module is: from a folder on sys.path, which an engine's workers are told about."""
    with user_module(tmp_path / "user_pkg", "engine_user_models", USER_MODELS) as name:
        yield name


def write_table(path: Path, rows: int = 300, *, classes: bool = False) -> Path:
    """A CSV of 5 features and a target `y`: a noisy linear regression, or (`classes`)
    the sign of a linear score as class ids 0/1."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, 5)).astype(np.float32)
    score = x @ np.array([1.5, -2.0, 0.5, 0.0, 1.0], dtype=np.float32)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(5)])
    frame["y"] = (score > 0).astype(np.int64) if classes else score + rng.normal(0, 0.05, rows)
    frame.to_csv(path, index=False)
    return path


def loader_generator(seed: int) -> torch.Generator:
    """The generator a rank's DataLoader shuffles with (`seed`), as its first epoch
    leaves it after drawing its base seed."""
    generator = torch.Generator().manual_seed(seed)
    torch.empty((), dtype=torch.int64).random_(generator=generator)  # DataLoader's base seed
    return generator


def joined_batches_reference(
    model: torch.nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    world: int,
    batch_size: int,
    seed: int,
    lr: float,
) -> torch.nn.Module:
    """One epoch of one process stepping (SGD) on the joined batches of `world` ranks:
    what `world` DDP ranks of batch `batch_size` must equal."""
    from jiasu.engines import shard_indices
    from jiasu.train.optimizers import create_optimizer

    optimizer = create_optimizer("sgd", model.parameters(), lr=lr)  # momentum 0.9
    shards = [shard_indices(len(targets), rank, world, seed) for rank in range(world)]
    # each rank's DataLoader shuffles its shard with the same seeded generator
    order = torch.randperm(shards[0].shape[0], generator=loader_generator(seed))
    for start in range(0, order.shape[0], batch_size):
        local = order[start : start + batch_size]
        index = torch.cat([shard[local] for shard in shards])
        loss = loss_fn(model(inputs[index]), targets[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


# `jiasu train` options of the user-table runs on every engine: 2 ranks x batch 16 of SGD
# for one epoch, which `trained_like_joined_batches` checks against one process.
TABLE_RUN = (
    "--target-column", "y", "--workers", "2", "--epochs", "1", "--batch-size", "16",
    "--optimizer", "sgd", "--lr", "0.05", "--recipe", "baseline",
)  # fmt: skip


def trained_like_joined_batches(saved: Path, table: Path, user_models: str) -> Any:
    """The model a `TABLE_RUN` of `user_models:tabular` on `table` saved in `saved`,
    checked equal to one process stepping on both ranks' joined batches; returns it
    (a `jiasu.models.saved.SavedModel`)."""
    from jiasu.data import read_training_data
    from jiasu.models.saved import load_model_dir
    from jiasu.train.losses import mean_squared_error

    train = read_training_data(table, target_column="y", seed=0).train  # the workers' split
    reference = joined_batches_reference(
        __import__(user_models).tabular(), train.inputs[0], train.targets, mean_squared_error,
        world=2, batch_size=16, seed=0, lr=0.05,
    )  # fmt: skip
    trained = load_model_dir(saved, trust_code=True)
    got = trained.model.state_dict()
    for name, tensor in reference.state_dict().items():
        torch.testing.assert_close(got[name], tensor, atol=2e-6, rtol=1e-5)
    return trained
