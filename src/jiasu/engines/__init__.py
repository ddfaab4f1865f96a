"""Beyond one machine: data-parallel training and batch inference on existing engines.

Engines (chosen by name from `ENGINES`): ``local`` (torch.distributed, processes spawned
by torch's elastic launcher), ``ray`` (Ray Train's TorchTrainer) and ``spark`` (Spark's
TorchDistributor). Ray and Spark are optional extras, imported only when chosen.

>>> from jiasu.engines import MnistSource, TrainJob, train_distributed
>>> from jiasu.models import ModelSpec
>>> from jiasu.train import TrainSettings
>>> job = TrainJob(ModelSpec("cnn"), MnistSource(train_samples=4000), TrainSettings(epochs=2))
>>> result = train_distributed(job, engine="ray", workers=2)  # doctest: +SKIP
"""

from jiasu.engines import local as _local  # registers "local"
from jiasu.engines.base import (
    ENGINES,
    Engine,
    EngineError,
    EngineOptions,
    WorkerContext,
    get_engine,
)
from jiasu.engines.data import DataSource, InMemorySource, MnistSource, UserDataSource
from jiasu.engines.ddp import (
    CrashOnce,
    DataParallel,
    RankResult,
    TrainJob,
    ddp_fit,
    shard_indices,
)
from jiasu.engines.predict import ModelDirPredictor, PredictorFactory, predict_distributed
from jiasu.engines.train import DistributedResult, train_distributed

ENGINES.add("ray", lambda: _load("ray"))
ENGINES.add("spark", lambda: _load("spark"))


def _load(name: str) -> Engine:
    if name == "ray":
        from jiasu.engines.ray_train import RayEngine

        return RayEngine()
    from jiasu.engines.spark_torch import SparkEngine

    return SparkEngine()


del _local

__all__ = [
    "ENGINES",
    "CrashOnce",
    "DataParallel",
    "DataSource",
    "DistributedResult",
    "Engine",
    "EngineError",
    "EngineOptions",
    "InMemorySource",
    "MnistSource",
    "ModelDirPredictor",
    "PredictorFactory",
    "RankResult",
    "TrainJob",
    "UserDataSource",
    "WorkerContext",
    "ddp_fit",
    "get_engine",
    "predict_distributed",
    "shard_indices",
    "train_distributed",
]
