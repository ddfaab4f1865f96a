"""The engine interface: run one function on N workers with an existing distributed engine.

An `Engine` starts the workers its own way (torch's elastic launcher, Ray Train,
Spark's TorchDistributor), sets the threads of each worker, initialises the
torch.distributed process group and hands the function a `WorkerContext`. The function
returns a value; the engine returns rank 0's. Checkpoints go through the context's
`CheckpointStore`, which is the engine's own storage, so that the engine can restart
failed workers from the last one.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol, TypeVar

from jiasu.core.errors import ConfigError, JiasuError
from jiasu.core.registry import Registry

T = TypeVar("T")

BACKENDS = ("gloo", "nccl")


class EngineError(JiasuError):
    """A distributed engine could not be reached, or its workers failed for good."""


@dataclasses.dataclass(frozen=True)
class EngineOptions:
    """How to run: workers, threads per worker, where the cluster is, how to recover.

    `address` is None for a cluster started on this machine for the run (and stopped
    after it); otherwise the engine's own address (``ray://host:10001`` or ``auto`` for
    Ray, ``spark://host:7077`` for Spark). `threads_per_worker` None means this machine's
    CPUs divided by the workers (at least 1): 2 ranks × 2 threads on 2 cores ran 3.6×
    slower. `max_failures` is how many worker failures the engine may recover from by
    restarting every worker from the last checkpoint. `storage_dir` holds the
    checkpoints; on several machines it must be a folder all of them see.
    """

    workers: int = 2
    threads_per_worker: int | None = None
    address: str | None = None
    backend: str = "gloo"
    max_failures: int = 0
    storage_dir: str | None = None
    run_name: str = "jiasu"

    def __post_init__(self) -> None:
        for name in ("workers", "threads_per_worker"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if isinstance(self.max_failures, bool) or not isinstance(self.max_failures, int):
            raise ConfigError(f"max_failures must be an integer >= 0, got {self.max_failures!r}")
        if self.max_failures < 0:
            raise ConfigError(f"max_failures must be >= 0, got {self.max_failures!r}")

    @property
    def threads(self) -> int:
        """Threads per worker: given, or the CPUs of this machine shared among the workers."""
        from jiasu.hardware.threads import default_threads

        return self.threads_per_worker or max(1, default_threads() // self.workers)

    @contextmanager
    def run_storage(self) -> Iterator[Path]:
        """The run's checkpoint folder, absolute, for the block; the run's scratch goes after.

        Without `storage_dir` it is a fresh temporary folder (``jiasu-<run_name>-*``),
        removed when the block ends, by success, failure or interrupt. A given folder is
        the user's and stays, checkpoints included; only the workers' scratch folders this
        run created in it (`scratch_for`) are removed.
        """
        if self.storage_dir is None:
            root = Path(tempfile.mkdtemp(prefix=f"jiasu-{self.run_name}-"))
            try:
                yield root
            finally:
                shutil.rmtree(root, ignore_errors=True)
            return
        root = Path(self.storage_dir).expanduser().resolve()
        existing = set(_scratch_folders(root))
        try:
            yield root
        finally:
            for folder in set(_scratch_folders(root)) - existing:
                shutil.rmtree(folder, ignore_errors=True)


class CheckpointStore(Protocol):
    """Where a worker reads the checkpoint to resume from and commits a new one."""

    def restore(self) -> AbstractContextManager[Path | None]:
        """A context giving the folder of the last committed checkpoint, or None."""
        ...

    def staging_dir(self) -> Path:
        """Where rank 0 writes checkpoints (``epoch-NNNN`` folders) before `commit`."""
        ...

    def commit(self, folder: Path | None, metrics: Mapping[str, float]) -> None:
        """Called by every rank once per epoch; rank 0 passes the checkpoint it just wrote."""
        ...


@dataclasses.dataclass(frozen=True)
class WorkerContext:
    """What the function sees on each worker; the process group is initialised already."""

    rank: int
    world_size: int
    local_rank: int
    threads: int
    backend: str
    store: CheckpointStore
    scratch_dir: Path  # a folder for this rank's temporary files

    @property
    def device(self) -> str:
        return f"cuda:{self.local_rank}" if self.backend == "nccl" else "cpu"

    @property
    def is_rank_zero(self) -> bool:
        return self.rank == 0


WorkerFn = Callable[[WorkerContext], T]


class Engine(Protocol):
    """Runs `fn` on `options.workers` workers and returns rank 0's return value."""

    name: str

    def run(self, fn: WorkerFn[T], options: EngineOptions) -> T: ...


ENGINES: Registry[Callable[[], Engine]] = Registry("engine")


def get_engine(name: str) -> Engine:
    """The engine registered under `name` (``local``, ``ray`` or ``spark``)."""
    return ENGINES.get(name)()


# --- helpers shared by the engines -----------------------------------------------------
class FolderStore:
    """A checkpoint store on a file system that every worker sees (local disk, NFS, DBFS).

    Rank 0 writes ``epoch-NNNN`` folders and ``latest.json`` with `jiasu.train.checkpoint`;
    the last one is what a restarted worker resumes from.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @contextmanager
    def restore(self) -> Iterator[Path | None]:
        from jiasu.train.checkpoint import LATEST, resolve_checkpoint

        yield resolve_checkpoint(self.directory) if (self.directory / LATEST).is_file() else None

    def staging_dir(self) -> Path:
        return self.directory

    def commit(self, folder: Path | None, metrics: Mapping[str, float]) -> None:
        """Nothing to do: rank 0 wrote the folder in place, `latest.json` last."""


def set_worker_threads(threads: int) -> None:
    """Set torch's threads, and OpenMP's for anything the worker starts, to `threads`."""
    from jiasu.hardware.threads import set_threads

    os.environ["OMP_NUM_THREADS"] = str(threads)
    set_threads(threads)


@contextmanager
def process_group(backend: str) -> Iterator[None]:
    """Initialise torch.distributed from the environment unless the engine already did."""
    import torch.distributed as dist

    created = not dist.is_initialized()
    if created:
        from torch.distributed.rendezvous import rendezvous

        store, rank, world_size = next(rendezvous("env://"))
        # torchrun's agent keeps its store across restarts: without a prefix per attempt a
        # restarted rank can read the dead rank 0's gloo address and fail to connect.
        attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
        store = dist.PrefixStore(f"jiasu/attempt-{attempt}", store)
        dist.init_process_group(backend=backend, store=store, rank=rank, world_size=world_size)
    try:
        yield
    finally:
        if created and dist.is_initialized():
            dist.destroy_process_group()


_SCRATCH_PREFIX = "scratch-rank"


def scratch_for(root: Path, rank: int) -> Path:
    """Rank `rank`'s scratch folder under `root`, created (removed by `run_storage`)."""
    path = root / f"{_SCRATCH_PREFIX}{rank}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _scratch_folders(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return [p for p in root.iterdir() if p.name.startswith(_SCRATCH_PREFIX) and p.is_dir()]


def describe_exception(exc: BaseException) -> str:
    """The first line of an exception's message, for one-sentence errors."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
