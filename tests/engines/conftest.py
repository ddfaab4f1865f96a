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
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from jiasu.engines import DistributedResult, MnistSource, TrainJob, train_distributed
from jiasu.models import ModelSpec

# Starting a JVM daemon took 62 s on a 2-core machine at load 17 (5 s when quiet):
# generous, and still bounded, so a cluster that cannot start fails the test.
START_TIMEOUT_S = 240
TRAIN_SAMPLES = 2000
VAL_SAMPLES = 1000


@pytest.fixture(scope="session")
def small_job(mnist_dir: Path) -> TrainJob:
    """2,000 MNIST images, 2 epochs of the small CNN: a few seconds per run on 2 cores."""
    source = MnistSource(str(mnist_dir), train_samples=TRAIN_SAMPLES, val_samples=VAL_SAMPLES)
    return TrainJob(ModelSpec("cnn"), source, epochs=2, batch_size=32, seed=0)


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
