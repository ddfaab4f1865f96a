"""The `local` engine: torch.distributed on this machine, started by torch's elastic launcher.

This is what ``torchrun --standalone --nproc-per-node N`` does, called as a library:
the launcher spawns N processes, sets up a c10d rendezvous listening on 127.0.0.1 only
(`jiasu.engines.loopback`), and on a
worker failure restarts every worker (up to `max_failures` times); they resume from
the last checkpoint in the storage folder.
"""

from __future__ import annotations

import os
import signal
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from jiasu.core.environ import environ_set
from jiasu.core.errors import ConfigError
from jiasu.engines.base import (
    ENGINES,
    EngineError,
    EngineOptions,
    FolderStore,
    WorkerContext,
    WorkerFn,
    process_group,
    scratch_for,
    set_worker_threads,
)
from jiasu.engines.loopback import LOOPBACK, register_backend, worker_environment

T = TypeVar("T")


def _worker(fn: WorkerFn[T], backend: str, threads: int, storage: str) -> T:
    """Entry point in each spawned process; torchrun's environment names the rank."""
    set_worker_threads(threads)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    root = Path(storage)
    ctx = WorkerContext(
        rank=rank,
        world_size=int(os.environ["WORLD_SIZE"]),
        local_rank=local_rank,
        threads=threads,
        backend=backend,
        store=FolderStore(root / "checkpoints"),
        scratch_dir=scratch_for(root, rank),
    )
    with process_group(backend):
        return fn(ctx)


class LocalEngine:
    """N processes on this machine (gloo on CPUs, nccl with one GPU per process)."""

    name = "local"

    def run(self, fn: WorkerFn[T], options: EngineOptions) -> T:
        if options.address is not None:
            raise ConfigError(
                f"the local engine runs on this machine only, got address {options.address!r}; "
                "use --engine ray or --engine spark for a cluster"
            )
        with (
            options.run_storage() as storage,
            tempfile.TemporaryDirectory(prefix="jiasu-elastic-") as logs,
        ):
            return self._launch(fn, options, storage, Path(logs))

    def _launch(self, fn: WorkerFn[T], options: EngineOptions, storage: Path, logs: Path) -> T:
        from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs
        from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
        from torch.distributed.launcher.api import LaunchConfig, elastic_launch

        config = LaunchConfig(
            min_nodes=1,
            max_nodes=1,
            nproc_per_node=options.workers,
            run_id=f"{options.run_name}-{uuid.uuid4().hex[:8]}",
            rdzv_backend=register_backend(),  # stores on 127.0.0.1 (jiasu.engines.loopback)
            rdzv_endpoint=f"{LOOPBACK}:0",  # unused: the backend binds its own free port
            local_addr=LOOPBACK,  # the workers' MASTER_ADDR
            max_restarts=options.max_failures,
            monitor_interval=0.1,
            start_method="spawn",
            logs_specs=DefaultLogsSpecs(log_dir=str(logs)),  # the workers' error files
        )
        # for the spawned processes: their threads, and collectives on loopback
        worker_env = {"OMP_NUM_THREADS": str(options.threads), **worker_environment(os.environ)}
        try:
            with environ_set(worker_env), _signal_handlers_kept():
                outputs = elastic_launch(config, _worker)(
                    fn, options.backend, options.threads, str(storage)
                )
        except ChildFailedError as exc:
            rank, failure = exc.get_first_failure()
            how = (
                f"was killed by {failure.signal_name()}"
                if failure.exitcode < 0
                else f"exited with code {failure.exitcode}"
            )
            raise EngineError(
                f"local worker rank {rank} {how} after {options.max_failures} restart(s); "
                "see its traceback above"
            ) from None
        return outputs[0]


@contextmanager
def _signal_handlers_kept() -> Iterator[None]:
    """Keep this process's signal handlers across torch's elastic launcher.

    The launcher replaces the handlers of SIGTERM, SIGINT, SIGHUP and SIGQUIT with one
    that raises its `SignalException` (after stopping the workers) and never puts them
    back. They are restored here, and a signal it caught goes to the handler that was
    there before: Ctrl-C raises `KeyboardInterrupt` as usual (and SIGTERM does whatever
    the caller set up, such as the CLI's clean exit); a signal with no Python handler
    raises `KeyboardInterrupt`, so the run's cleanup still happens.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    from torch.distributed.elastic.multiprocessing.api import SignalException

    names = ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT")
    saved = {sig: signal.getsignal(sig) for name in names if (sig := getattr(signal, name, None))}
    try:
        yield
    except SignalException as exc:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        previous = saved.get(signal.Signals(exc.sigval))
        if callable(previous):
            previous(exc.sigval, None)  # raises: KeyboardInterrupt for Ctrl-C
        raise KeyboardInterrupt(f"interrupted by {signal.Signals(exc.sigval).name}") from None
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


ENGINES.add("local", LocalEngine)
