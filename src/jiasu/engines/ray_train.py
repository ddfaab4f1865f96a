"""The `ray` engine: Ray Train's `TorchTrainer`, checkpoints through Ray Train's storage.

Ray Train starts one worker actor per rank, sets up the torch.distributed group and,
with `FailureConfig(max_failures)`, restarts the whole worker group after a failure;
`ray.train.get_checkpoint()` then hands every worker the last reported checkpoint.
The storage folder must be one all nodes see on a multi-node cluster (NFS or cloud
storage).

Without an address a Ray instance is started on this machine for the run and shut
down after it (only that instance: never ``ray stop``, which kills every Ray process
on the host). That instance listens on 127.0.0.1 only and keeps token authentication
on, with a token made for the run (`jiasu.engines.ray_local`); its object store is
`LOCAL_OBJECT_STORE_BYTES` instead of about 30% of memory. Joining a cluster with an
address changes nothing in the environment: the cluster's own security applies.
"""

from __future__ import annotations

import pickle
import shutil
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from jiasu.core.extras import require
from jiasu.engines.base import (
    EngineError,
    EngineOptions,
    WorkerContext,
    WorkerFn,
    describe_exception,
    process_group,
    scratch_for,
    set_worker_threads,
)
from jiasu.engines.ray_local import check_loopback, loopback_only
from jiasu.engines.reach import check_reachable

T = TypeVar("T")

LOCAL_OBJECT_STORE_BYTES = 256 * 1024**2
_RESULT_FILE = "rank0-result.pkl"


@contextmanager
def ray_connection(address: str | None, *, num_cpus: int | None = None) -> Iterator[None]:
    """Connect to the Ray cluster at `address`, or start one here (and stop only that one).

    If this process is already connected (``ray.init`` was called), that connection is
    used and left open.
    """
    ray = require("ray", extra="ray", purpose="the ray engine")
    if ray.is_initialized():
        yield
        return
    if address is not None:  # the cluster's own settings, authentication included
        check_reachable(address, engine="Ray", default_port=6379)
        with _connected(ray, address, lambda: ray.init(address=address)):
            yield
        return
    with loopback_only():

        def start() -> None:
            ray.init(
                num_cpus=num_cpus,
                object_store_memory=LOCAL_OBJECT_STORE_BYTES,
                include_dashboard=False,
                log_to_driver=True,
            )
            check_loopback(ray)

        with _connected(ray, None, start):
            yield


@contextmanager
def _connected(ray: Any, address: str | None, connect: Callable[[], None]) -> Iterator[None]:
    """Run `connect`, turning Ray's start-up errors into one sentence; shut down after."""
    try:
        connect()
    except (ConnectionError, TimeoutError, RuntimeError, ValueError) as exc:
        ray.shutdown()  # whatever part of a local instance had started
        where = f"the Ray cluster at {address!r}" if address else "a local Ray instance"
        raise EngineError(
            f"cannot reach {where} ({describe_exception(exc)}); start one with "
            "`ray start --head` and pass its address, or leave the address out"
        ) from None
    except BaseException:  # EngineError from the loopback check, KeyboardInterrupt
        ray.shutdown()
        raise
    try:
        yield
    finally:
        ray.shutdown()


class _RayStore:
    """Checkpoints reported with `ray.train.report`; restored with `get_checkpoint`."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch

    @contextmanager
    def restore(self) -> Iterator[Path | None]:
        import ray.train

        checkpoint = ray.train.get_checkpoint()
        if checkpoint is None:
            yield None
            return
        with checkpoint.as_directory() as folder:
            yield Path(folder)

    def staging_dir(self) -> Path:
        return self.scratch / "checkpoints"

    def commit(self, folder: Path | None, metrics: Mapping[str, float]) -> None:
        import ray.train

        checkpoint = None if folder is None else ray.train.Checkpoint.from_directory(str(folder))
        ray.train.report(dict(metrics), checkpoint=checkpoint)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)  # persisted to the run's storage now


def _worker(config: dict[str, Any]) -> None:
    """Ray Train's per-worker function: run `fn`, report rank 0's return value."""
    import ray.train

    threads: int = config["threads"]
    set_worker_threads(threads)
    context = ray.train.get_context()
    rank = context.get_world_rank()
    scratch = scratch_for(Path(config["scratch"]), rank)
    ctx = WorkerContext(
        rank=rank,
        world_size=context.get_world_size(),
        local_rank=context.get_local_rank(),
        threads=threads,
        backend=config["backend"],
        store=_RayStore(scratch),
        scratch_dir=scratch,
    )
    with process_group(config["backend"]):
        result = config["fn"](ctx)
    checkpoint = None
    if rank == 0:  # rank 0's return value travels as the run's last checkpoint
        folder = scratch / "result"
        folder.mkdir(exist_ok=True)
        (folder / _RESULT_FILE).write_bytes(pickle.dumps(result))
        checkpoint = ray.train.Checkpoint.from_directory(str(folder))
    ray.train.report({"finished": 1.0}, checkpoint=checkpoint)  # every rank, same count


class RayEngine:
    """Ray Train `TorchTrainer` with `workers` workers of `threads_per_worker` CPUs each."""

    name = "ray"

    def run(self, fn: WorkerFn[T], options: EngineOptions) -> T:
        require("ray.train", extra="ray", purpose="the ray engine")
        with options.run_storage() as storage:
            run_name = f"{options.run_name}-{uuid.uuid4().hex[:8]}"
            scratch = storage / run_name / "scratch"  # the workers' (removed after the run)
            try:
                return _fit(fn, options, storage, run_name, scratch)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)


def _fit(fn: WorkerFn[T], options: EngineOptions, storage: Path, run_name: str, scratch: Path) -> T:
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    trainer = TorchTrainer(
        _worker,
        train_loop_config={
            "fn": fn,
            "threads": options.threads,
            "backend": options.backend,
            "scratch": str(scratch),
        },
        torch_config=TorchConfig(backend=options.backend),
        scaling_config=ScalingConfig(
            num_workers=options.workers,
            use_gpu=options.backend == "nccl",
            resources_per_worker={"CPU": options.threads},
        ),
        run_config=RunConfig(
            name=run_name,
            storage_path=str(storage),
            failure_config=FailureConfig(max_failures=options.max_failures),
        ),
    )
    with ray_connection(options.address, num_cpus=options.workers * options.threads):
        try:
            result = trainer.fit()
        except Exception as exc:  # ray.train.TrainingFailedError and its kin
            raise EngineError(
                f"Ray Train failed after {options.max_failures} restart(s): "
                f"{describe_exception(exc)}"
            ) from None
    if result.checkpoint is None:
        raise EngineError("Ray Train finished without rank 0's result; see the worker logs")
    with result.checkpoint.as_directory() as folder:
        # our own worker's pickle, read back from the run's storage
        return pickle.loads((Path(folder) / _RESULT_FILE).read_bytes())
