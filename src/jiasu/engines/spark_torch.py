"""The `spark` engine: Spark's `TorchDistributor`, one barrier task per rank.

`TorchDistributor(local_mode=False)` runs a barrier stage of `workers` tasks on the
executors; each task starts ``torchrun`` for its rank, with the rendezvous on rank 0's
executor. Spark does not retry a failed barrier *result* stage ("Could not recover
from a failed barrier ResultStage"), so on a failure the distributor's job is submitted
again, up to `max_failures` times: Spark schedules a fresh barrier stage and the
workers resume from the last checkpoint in the storage folder, which on a cluster must
be a shared file system.

Without an address, a Spark session with a ``local[cores, maxFailures]`` master is
started for the run and stopped after it. Executors start the Python named by
``spark.pyspark.python``; it is set to the running interpreter, else they would start
the system Python, which lacks jiasu and torch.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from jiasu.core.extras import require
from jiasu.engines.base import (
    EngineError,
    EngineOptions,
    WorkerFn,
    describe_exception,
)
from jiasu.engines.local import _worker
from jiasu.engines.reach import check_reachable, host_port

T = TypeVar("T")
_log = logging.getLogger(__name__)


@contextmanager
def spark_session(
    address: str | None, *, cores: int, task_cpus: int = 1, max_failures: int = 0
) -> Iterator[Any]:
    """The active Spark session, or a new one on `address` (None: this machine) for the block.

    A session this function creates is stopped afterwards; one that was already active is
    used as it is and left running.
    """
    require("pyspark", extra="spark", purpose="the spark engine")
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        yield active
        return
    if address is not None:
        check_reachable(address, engine="Spark", default_port=7077)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    attempts = max_failures + 1
    builder = (
        SparkSession.builder.appName("jiasu")
        .master(address or f"local[{cores},{attempts}]")
        .config("spark.pyspark.python", sys.executable)
        .config("spark.pyspark.driver.python", sys.executable)
        .config("spark.task.maxFailures", str(attempts))
        .config("spark.task.cpus", str(task_cpus))
        .config("spark.executorEnv.OMP_NUM_THREADS", str(task_cpus))
        .config("spark.ui.enabled", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
    )
    if address is None or _is_loopback(address):
        builder = builder.config("spark.driver.host", "127.0.0.1").config(
            "spark.driver.bindAddress", "127.0.0.1"
        )
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # py4j and JVM start-up errors
        raise EngineError(
            f"cannot start Spark on {address or 'this machine'} ({describe_exception(exc)}); "
            "check that Java 17 is installed and the master address is right"
        ) from None
    session.sparkContext.setLogLevel("ERROR")
    try:
        yield session
    finally:
        session.stop()


def _is_loopback(address: str) -> bool:
    target = host_port(address, 7077)
    return target is not None and target[0] in ("127.0.0.1", "localhost")


class SparkEngine:
    """TorchDistributor with `workers` barrier tasks of `threads_per_worker` CPUs each."""

    name = "spark"

    def run(self, fn: WorkerFn[T], options: EngineOptions) -> T:
        require("pyspark.ml.torch.distributor", extra="spark", purpose="the spark engine")
        from pyspark.ml.torch.distributor import TorchDistributor

        with (
            options.run_storage() as storage,
            spark_session(
                options.address,
                cores=options.workers * options.threads,
                task_cpus=options.threads,
                max_failures=options.max_failures,
            ),
        ):
            for attempt in range(options.max_failures + 1):
                distributor = TorchDistributor(
                    num_processes=options.workers,
                    local_mode=False,
                    use_gpu=options.backend == "nccl",
                )
                try:
                    return distributor.run(  # type: ignore[return-value]
                        _worker, fn, options.backend, options.threads, str(Path(storage))
                    )
                except Exception as exc:  # Py4JJavaError, PythonException, RuntimeError
                    failure = describe_exception(exc)
                    if attempt < options.max_failures:
                        _log.warning("Spark barrier job failed (%s); resubmitting", failure)
        raise EngineError(
            f"Spark's TorchDistributor failed after {options.max_failures} restart(s): "
            f"{failure}; see the executor logs above"
        )
