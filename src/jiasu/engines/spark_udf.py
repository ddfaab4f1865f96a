"""Batch inference on Spark: `pyspark.ml.functions.predict_batch_udf`.

The inputs become a DataFrame of rows (id, one column per model input), Arrow-encoded:
each input is flattened to an array column of its own dtype (token ids stay integers).
The UDF calls the predictor factory once per Python worker and feeds it batches
reshaped to each input's sample shape and cast back to its dtype. The prediction comes
back flattened, with its per-sample shape and dtype, and is rebuilt exactly (float64
holds float32 and integers below 2**53 without loss). Rows are put back in input order
by id.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import numpy as np

from jiasu.core.extras import require
from jiasu.engines.base import EngineError
from jiasu.engines.predict import Predict, PredictJob, PredictorFactory, call_predict
from jiasu.engines.spark_torch import spark_session

PARTITIONS_PER_WORKER = 2
# numpy dtype -> Spark SQL element type (Spark has no unsigned integers: uint8 widens)
_SPARK_TYPES = {
    "float32": "float",
    "float16": "float",
    "float64": "double",
    "int64": "bigint",
    "int32": "int",
    "int16": "smallint",
    "int8": "tinyint",
    "uint8": "smallint",
    "bool": "boolean",
}


def predict_spark(job: PredictJob) -> np.ndarray:
    for module in ("pyspark", "pandas", "pyarrow"):  # the spark extra, each named if missing
        require(module, extra="spark", purpose="the spark engine")
    import pandas as pd
    from pyspark.ml.functions import predict_batch_udf
    from pyspark.sql import types as T

    n = job.count
    columns = [f"input_{i}" for i in range(len(job.inputs))]
    shapes = [list(a.shape[1:]) or None for a in job.inputs]  # None: a scalar per sample
    udf = predict_batch_udf(
        _MakePredict(job.factory, tuple(str(a.dtype) for a in job.inputs)),
        return_type=T.StructType(
            [
                T.StructField("flat", T.ArrayType(T.DoubleType())),
                T.StructField("dims", T.ArrayType(T.LongType())),
                T.StructField("dtype", T.StringType()),
            ]
        ),
        batch_size=job.batch_size,
        input_tensor_shapes=shapes if any(shapes) else None,
    )
    frame = pd.DataFrame({"id": np.arange(n, dtype=np.int64)})
    schema = ["id long"]
    for name, array in zip(columns, job.inputs, strict=True):
        kind = _spark_type(array.dtype)
        frame[name] = list(array.reshape(n, -1)) if array.ndim > 1 else array
        schema.append(f"{name} array<{kind}>" if array.ndim > 1 else f"{name} {kind}")
    with spark_session(
        job.address, cores=job.workers * job.threads_per_worker, task_cpus=job.threads_per_worker
    ) as spark:
        rows = spark.createDataFrame(frame, schema=", ".join(schema))
        rows = rows.repartition(job.workers * PARTITIONS_PER_WORKER)
        out = rows.select("id", udf(*columns).alias("prediction")).toPandas()
    if len(out) != n:
        raise EngineError(f"Spark returned {len(out)} predictions for {n} inputs")
    return _rebuild(out.sort_values("id")["prediction"])


def _spark_type(dtype: np.dtype) -> str:
    kind = _SPARK_TYPES.get(str(dtype))
    if kind is None:
        raise EngineError(f"the spark engine cannot carry {dtype} inputs; pass floats or integers")
    return kind


def _rebuild(predictions: Any) -> np.ndarray:
    """(N, ...) predictions in their dtype from the rows' flattened values."""
    first = predictions.iloc[0]
    dims = tuple(int(d) for d in first["dims"])
    dtype = np.dtype(first["dtype"])
    if any(tuple(int(d) for d in p["dims"]) != dims for p in predictions):
        raise EngineError("the predictor returned outputs of different shapes across batches")
    flat = np.stack([np.asarray(p["flat"], dtype=np.float64) for p in predictions])
    return flat.astype(dtype).reshape(len(predictions), *dims)


@dataclasses.dataclass(frozen=True)
class _MakePredict:
    """The picklable `make_predict_fn`: builds the predictor once per Python worker."""

    factory: PredictorFactory
    dtypes: tuple[str, ...]

    def __call__(self) -> _Predict:
        return _Predict(self.factory(), self.dtypes)


class _Predict:
    """Takes one array per input column (as `predict_batch_udf` passes them) and returns
    the prediction flattened, with its per-sample shape and dtype."""

    def __init__(self, predict: Predict, dtypes: tuple[str, ...]) -> None:
        self.predict = predict
        self.dtypes = dtypes
        # predict_batch_udf counts the parameters to pass one array per column
        parameter = inspect.Parameter.POSITIONAL_ONLY
        self.__signature__ = inspect.Signature(
            [inspect.Parameter(f"input_{i}", parameter) for i in range(len(dtypes))]
        )

    def __call__(self, *arrays: np.ndarray) -> dict[str, np.ndarray]:
        cast = [np.ascontiguousarray(a, dtype=d) for a, d in zip(arrays, self.dtypes, strict=True)]
        out = np.asarray(call_predict(self.predict, cast))
        n = out.shape[0]
        return {
            "flat": out.reshape(n, -1).astype(np.float64),
            "dims": np.tile(np.asarray(out.shape[1:], dtype=np.int64), (n, 1)),
            "dtype": np.full(n, out.dtype.str),
        }
