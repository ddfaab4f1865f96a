"""`jiasu serve` on one machine: the app of `jiasu.serve.app` served by uvicorn.

The port is bound here before uvicorn starts, so a port in use is one sentence (and
port 0 picks a free one, printed). SIGTERM (or Ctrl-C) turns readiness false at once,
stops accepting connections, lets in-flight requests finish and drains the batcher, all
within ``drain_s``, then the process exits 0.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from jiasu.core.environ import environ_set
from jiasu.core.errors import ConfigError
from jiasu.core.extras import require
from jiasu.serve.settings import ServeSettings

if TYPE_CHECKING:
    from jiasu.infer.artifact import Predictor

ENVIRONMENT = "JIASU_SERVE_CONFIG"  # how --workers N passes the model to its processes
BACKLOG = 2048  # connections the kernel queues before uvicorn accepts them
# uvicorn kills a worker that does not answer its supervisor within this; importing torch
# and loading the model take longer than its default of 5 s on a busy machine.
WORKER_START_S = 120


def require_extra() -> None:
    """`MissingExtraError` (one sentence) unless the ``serve`` extra is installed."""
    for module in ("fastapi", "uvicorn", "prometheus_client"):
        require(module, extra="serve", purpose="jiasu serve")


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (`host`, `port`); port 0 picks a free port. A port in use or
    an address this machine does not have is a `ConfigError`."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port {port} is not a TCP port; give 1-65535, or 0 for a free one")
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as exc:
        raise ConfigError(
            f"--host {host!r} is not an address of this machine ({exc.strerror}); "
            "use 127.0.0.1 (this machine only) or 0.0.0.0 (all)"
        ) from None
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: TIME_WAIT
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"port {port} on {host} is in use by another program; stop it "
                "or choose another with --port (0 picks a free one)"
            ) from None
        raise ConfigError(
            f"cannot listen on {host}:{port} ({exc.strerror}); choose another --host or --port"
        ) from None
    sock.set_inheritable(True)  # --workers: the worker processes accept on it
    return sock


def bound_port(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


def run(
    predictor: Any,
    settings: ServeSettings,
    sock: socket.socket,
    *,
    workers: int = 1,
    access_log: bool = True,
) -> None:
    """Serve `predictor` on the bound `sock` until SIGTERM or Ctrl-C, then drain.

    With `workers` > 1, uvicorn starts that many processes, each loading the artifact
    again from ``predictor.path`` and accepting on the same socket."""
    require_extra()
    import uvicorn

    if type(workers) is not int or workers < 1:
        raise ConfigError(f"--workers is {workers!r}; give a whole number of at least 1")
    options: dict[str, Any] = {
        "log_config": _log_config(access_log),
        "access_log": False,  # ours is structured (jiasu.serve.access), one JSON per line
        "timeout_graceful_shutdown": settings.drain_s,
        "timeout_keep_alive": settings.keep_alive_s,
        "backlog": BACKLOG,
    }
    if workers == 1:
        from jiasu.serve.app import build_app

        app = build_app(predictor, settings)
        server = _DrainingServer(uvicorn.Config(app, **options), app.state.model)
        server.run(sockets=[sock])
        return
    os.environ[ENVIRONMENT] = json.dumps(
        {
            "directory": str(Path(predictor.path).resolve()),
            "trust_code": bool(getattr(predictor, "trust_code", False)),
            "settings": settings.to_dict(),
        }
    )
    config = uvicorn.Config(
        "jiasu.serve.server:app_from_environment",
        factory=True,
        workers=workers,
        timeout_worker_healthcheck=WORKER_START_S,
        **options,
    )
    from uvicorn.supervisors import Multiprocess

    with _shared_metrics_folder():
        Multiprocess(config, sockets=[sock]).run()  # each worker drains on SIGTERM by itself


@contextlib.contextmanager
def _shared_metrics_folder() -> Iterator[None]:
    """A folder where the worker processes keep their Prometheus counts, so that /metrics
    sums them all (`jiasu.serve.metrics`): the user's `PROMETHEUS_MULTIPROC_DIR` if set
    (left as it is), else a fresh one that jiasu makes here and removes afterwards."""
    from jiasu.serve.metrics import MULTIPROCESS_DIR

    if os.environ.get(MULTIPROCESS_DIR):
        yield
        return
    folder = tempfile.mkdtemp(prefix="jiasu-serve-metrics-")
    try:
        with environ_set({MULTIPROCESS_DIR: folder}):  # the spawned workers inherit it
            yield
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # only the folder made just above


def serve(
    directory: str | os.PathLike[str],
    settings: ServeSettings | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    *,
    trust_code: bool = False,
    access_log: bool = True,
) -> None:
    """Load the artifact in `directory` and serve it (`listen`, then `run`)."""
    require_extra()
    predictor = load_served(directory, trust_code=trust_code)
    settings = settings or ServeSettings(default_name(directory))
    run(predictor, settings, listen(host, port), workers=workers, access_log=access_log)


def load_served(directory: str | os.PathLike[str], *, trust_code: bool = False) -> Predictor:
    """The artifact in `directory` loaded to share the CPU with the server's event loops
    (`jiasu.load(shared_cpu=True)`: no runtime pool that spins on the cores between calls);
    every server of jiasu (one process, `--workers`, Ray replicas, the tuner's) loads so."""
    from jiasu.infer.artifact import load

    return load(directory, trust_code=trust_code, shared_cpu=True)


def default_name(directory: str | os.PathLike[str]) -> str:
    """The model's name in URLs when none is given: the artifact folder's name, with any
    character a URL segment should not hold replaced by '-'."""
    name = Path(directory).resolve().name
    cleaned = "".join(c if c.isalnum() or c in "-_." else "-" for c in name).lstrip("-_.")
    return cleaned or "model"


def app_from_environment() -> Any:
    """The app for one `--workers` process, from what `run` put in the environment."""
    from jiasu.serve.app import build_app

    config = json.loads(os.environ[ENVIRONMENT])
    predictor = load_served(config["directory"], trust_code=config["trust_code"])
    return build_app(predictor, ServeSettings.from_dict(config["settings"]))


def _log_config(access_log: bool) -> dict[str, Any]:
    """uvicorn's logging, plus jiasu.serve's lines (and its access log when wanted)."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["plain"] = {"format": "%(message)s"}
    config["handlers"]["plain"] = {
        "class": "logging.StreamHandler",
        "formatter": "plain",
        "stream": "ext://sys.stderr",
    }
    config["loggers"]["jiasu.serve"] = {
        "handlers": ["default"],
        "level": "INFO",
        "propagate": False,
    }
    config["loggers"]["jiasu.serve.access"] = {
        "handlers": ["plain"],
        "level": "INFO" if access_log else "WARNING",
        "propagate": False,
    }
    return config


class _DrainingServer:
    """uvicorn's Server whose SIGTERM/SIGINT turns readiness false first, and which
    exits 0 after a graceful drain (uvicorn would re-raise the signal)."""

    def __new__(cls, config: Any, model: Any) -> Any:
        import uvicorn

        class DrainingServer(uvicorn.Server):
            def handle_exit(self, sig: int, frame: FrameType | None) -> None:
                model.ready = False  # only a flag: safe in a signal handler
                model.stopping = True
                drain_s = config.timeout_graceful_shutdown or model.settings.drain_s
                model.drain_deadline = time.monotonic() + drain_s
                if self.should_exit and sig == 2:  # a second Ctrl-C: stop now
                    self.force_exit = True
                self.should_exit = True

        return DrainingServer(config)
