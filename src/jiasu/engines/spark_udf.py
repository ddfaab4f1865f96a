"""Batch inference on Spark: `pyspark.ml.functions.predict_batch_udf`.

The inputs become a DataFrame of (id, flattened sample) rows, Arrow-encoded; the UDF
calls the predictor factory once per Python worker and feeds it batches reshaped to
the sample shape. Rows are put back in input order by id.
"""

from __future__ import annotations

import numpy as np

from jiasu.core.extras import require
from jiasu.engines.base import EngineError
from jiasu.engines.predict import PredictJob
from jiasu.engines.spark_torch import spark_session

PARTITIONS_PER_WORKER = 2


def predict_spark(job: PredictJob) -> np.ndarray:
    for module in ("pyspark", "pandas", "pyarrow"):  # the spark extra, each named if missing
        require(module, extra="spark", purpose="the spark engine")
    import pandas as pd
    from pyspark.ml.functions import predict_batch_udf
    from pyspark.sql.types import ArrayType, FloatType

    n = job.inputs.shape[0]
    sample_shape = list(job.inputs.shape[1:])
    flat = job.inputs.reshape(n, -1)  # (N, prod(sample_shape))
    udf = predict_batch_udf(
        job.factory,
        return_type=ArrayType(FloatType()),
        batch_size=job.batch_size,
        input_tensor_shapes=[sample_shape],
    )
    with spark_session(
        job.address, cores=job.workers * job.threads_per_worker, task_cpus=job.threads_per_worker
    ) as spark:
        frame = pd.DataFrame({"id": np.arange(n, dtype=np.int64), "x": list(flat)})
        rows = spark.createDataFrame(frame, schema="id long, x array<float>")
        rows = rows.repartition(job.workers * PARTITIONS_PER_WORKER)
        out = rows.select("id", udf("x").alias("prediction")).toPandas()
    if len(out) != n:
        raise EngineError(f"Spark returned {len(out)} predictions for {n} inputs")
    out = out.sort_values("id")
    return np.stack([np.asarray(p, dtype=np.float32) for p in out["prediction"]])
