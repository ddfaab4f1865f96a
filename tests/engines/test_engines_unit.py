"""Fast checks of the engine plumbing: sharding, options, registries, errors."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DistributedSampler

from jiasu.core.errors import ConfigError, MissingExtraError
from jiasu.engines import (
    ENGINES,
    EngineError,
    EngineOptions,
    MnistSource,
    TrainJob,
    get_engine,
    predict_distributed,
    shard_indices,
    train_distributed,
)
from jiasu.engines.ray_data import pool_size
from jiasu.engines.reach import check_reachable, host_port
from jiasu.models import ModelSpec, create_model, save_model_dir
from jiasu.train.settings import TrainSettings


@pytest.mark.parametrize(("n", "world"), [(10, 2), (11, 2), (7, 3), (5, 1)])
def test_shards_are_distributed_sampler_indices(n: int, world: int) -> None:
    for rank in range(world):
        sampler = DistributedSampler(range(n), num_replicas=world, rank=rank, seed=3)
        assert shard_indices(n, rank, world, seed=3).tolist() == list(sampler)


def test_shards_cover_every_sample_with_equal_counts() -> None:
    shards = [shard_indices(101, rank, 4, seed=0) for rank in range(4)]
    assert {s.shape[0] for s in shards} == {26}  # same batch count on every rank
    assert set(torch.cat(shards).tolist()) == set(range(101))


def test_engines_registry_names_and_unknown_engine() -> None:
    assert ENGINES.names() == ["local", "ray", "spark"]
    with pytest.raises(ConfigError, match="did you mean 'spark'"):
        get_engine("sparc")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"workers": 0}, "workers must be a positive integer"),
        ({"threads_per_worker": -1}, "threads_per_worker must be"),
        ({"backend": "mpi"}, "backend must be one of gloo, nccl"),
        ({"max_failures": -1}, "max_failures must be >= 0"),
    ],
)
def test_engine_options_reject_bad_values(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        EngineOptions(**kwargs)  # type: ignore[arg-type]


def test_threads_per_worker_share_the_cpus() -> None:
    from jiasu.hardware.threads import default_threads

    assert EngineOptions(workers=2).threads == max(1, default_threads() // 2)
    assert EngineOptions(workers=64).threads == 1
    assert EngineOptions(workers=2, threads_per_worker=3).threads == 3


def test_ray_pool_always_leaves_a_cpu_free() -> None:
    assert pool_size(2, 1, cluster_cpus=3) == 2
    assert pool_size(2, 1, cluster_cpus=2) == 1  # every CPU in the pool would deadlock
    assert pool_size(8, 2, cluster_cpus=9) == 4


def test_addresses_parse() -> None:
    assert host_port("spark://10.0.0.1:7077", 7077) == ("10.0.0.1", 7077)
    assert host_port("ray://head:10001", 6379) == ("head", 10001)
    assert host_port("127.0.0.1:6380", 6379) == ("127.0.0.1", 6380)
    assert host_port("auto", 6379) is None


def test_unreachable_address_is_one_clear_error() -> None:
    with pytest.raises(
        EngineError, match=r"cannot reach the Spark cluster at 'spark://127\.0\.0\.1:1'"
    ):
        check_reachable("spark://127.0.0.1:1", engine="Spark", default_port=7077)


def test_local_engine_refuses_an_address(small_job: TrainJob) -> None:
    with pytest.raises(ConfigError, match="local engine runs on this machine only"):
        train_distributed(small_job, engine="local", address="spark://127.0.0.1:7077")


@pytest.mark.parametrize(
    ("engine", "modules"),
    [("ray", ["ray", "ray.train"]), ("spark", ["pyspark", "pyspark.ml.torch.distributor"])],
)
def test_missing_extra_names_the_extra(
    engine: str, modules: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    job = TrainJob(ModelSpec("mlp"), MnistSource(train_samples=10))
    with pytest.raises(MissingExtraError, match=rf"pip install 'jiasu\[{engine}\]'"):
        train_distributed(job, engine=engine, workers=1)


def test_train_job_rejects_bad_values() -> None:
    with pytest.raises(ConfigError, match="epochs must be a positive integer"):
        TrainJob(ModelSpec("mlp"), MnistSource(), TrainSettings(epochs=0))


def test_local_inference_is_the_model_itself(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = create_model("mlp").eval()
    save_model_dir(tmp_path / "m", model, ModelSpec("mlp"))
    x = torch.rand(70, 1, 28, 28)
    got = predict_distributed(tmp_path / "m", x, engine="local", batch_size=32)
    # The same batches of 32 through the model: bit for bit. (Against one call on all 70
    # rows it is not: on an AVX-512/AMX CPU oneDNN's matmul rounds differently per batch
    # size, by ~3e-8 here.)
    with torch.inference_mode():
        expected = torch.cat([model(x[i : i + 32]) for i in range(0, len(x), 32)])
    assert np.array_equal(got, expected.numpy())


def test_inference_rejects_bad_inputs(tmp_path: Path) -> None:
    save_model_dir(tmp_path / "m", create_model("mlp"), ModelSpec("mlp"))
    with pytest.raises(ConfigError, match="inputs must be an array"):
        predict_distributed(tmp_path / "m", np.zeros(3, np.float32), engine="local")
    with pytest.raises(ConfigError, match="unknown inference engine 'flink'"):
        predict_distributed(tmp_path / "m", np.zeros((3, 1, 28, 28), np.float32), engine="flink")


class _TwoInputFactory:
    """A predictor of two int64 inputs (ids, mask): per row, the masked sum and the count."""

    def __call__(self) -> object:
        def predict(batch: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
            ids, mask = batch
            assert ids.dtype == np.int64 and mask.dtype == np.int64  # never cast to float
            return np.stack([(ids * mask).sum(1), mask.sum(1)], axis=1).astype(np.float32)

        return predict


def test_local_inference_passes_every_input_of_a_batch() -> None:
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 1000, (70, 16))
    mask = (rng.random((70, 16)) > 0.5).astype(np.int64)
    got = predict_distributed(_TwoInputFactory(), (ids, mask), engine="local", batch_size=32)
    expected = np.stack([(ids * mask).sum(1), mask.sum(1)], axis=1).astype(np.float32)
    assert np.array_equal(got, expected)
    with pytest.raises(ConfigError, match=r"different numbers of samples \(\[69, 70\]\)"):
        predict_distributed(_TwoInputFactory(), (ids, mask[:69]), engine="local")


def test_fit_takes_its_hyper_parameters_as_one_train_settings() -> None:
    """The one settings type: fit(settings=...) trains exactly as the same keywords do, and
    keywords beside settings are one sentence."""
    from jiasu.train import fit

    x = torch.randn(64, 4, generator=torch.Generator().manual_seed(0))
    y = (x.sum(dim=1) > 0).long()

    def model() -> torch.nn.Module:
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))

    a, b = model(), model()
    fit(a, (x, y), epochs=2, batch_size=8, lr=0.01, optimizer="sgd", seed=3, quiet=True)
    settings = TrainSettings(epochs=2, batch_size=8, lr=0.01, optimizer="sgd", seed=3)
    fit(b, (x, y), settings=settings, quiet=True)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    with pytest.raises(ConfigError, match="epochs given beside settings"):
        fit(model(), (x, y), settings=settings, epochs=3, quiet=True)
    with pytest.raises(ConfigError, match="settings must be a TrainSettings"):
        TrainJob(ModelSpec("mlp"), MnistSource(), {"epochs": 1})  # type: ignore[arg-type]
