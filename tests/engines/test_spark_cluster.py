"""Spark standalone: a master and 2 workers (1 core each) on 127.0.0.1, started here."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from jiasu.engines import DistributedResult, TrainJob, train_distributed

from .conftest import SparkStandalone, same_weights

pytest.importorskip("pyspark")
if shutil.which("java") is None:
    pytest.skip("Spark needs Java (17); none on PATH", allow_module_level=True)


@pytest.mark.timeout(900)  # start 196 s + run 335 s measured at load 12-17 on 2 cores
def test_spark_standalone_two_workers_match_local(
    spark_standalone: SparkStandalone,
    small_job: TrainJob,
    local_result: DistributedResult,
    tmp_path: Path,
) -> None:
    result = train_distributed(
        small_job, engine="spark", workers=2, threads_per_worker=1,
        address=spark_standalone.address, storage_dir=tmp_path,
    )  # fmt: skip
    assert same_weights(result.model, local_result.model)
