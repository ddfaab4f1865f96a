"""`jiasu serve --engine ray`: the same app as one machine, in Ray Serve replicas.

Each replica loads the artifact itself (only its path travels) and mounts the app of
`jiasu.serve.app.build_app` with ``@serve.ingress``, so both engines answer the same
protocol with the same batcher, limits and metrics. A replica turns RUNNING only after its
model is loaded and warmed up (its lifespan waits for the warm-up), so Ray's proxy sends
it no request before. Ray's own HTTP proxy listens on `host`:`port` of the head node
only (loopback unless `host` says otherwise).

Without `address` a Ray instance is started on this machine for the run, reachable from
this machine only (`jiasu.engines.ray_local`); with it, the cluster at `address` is
joined. On SIGTERM or Ctrl-C the application is deleted (Ray drains each replica within
``drain_s``); a local instance is then stopped, while a cluster is left running as it was.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

from jiasu.core.errors import ConfigError
from jiasu.core.extras import require
from jiasu.serve.settings import ServeSettings

HEALTH_PERIOD_S = 5.0  # how often Ray asks each replica whether it is healthy


def require_extra() -> None:
    """`MissingExtraError` unless Ray Serve and the ``serve`` extra are installed."""
    require("ray.serve", extra="ray", purpose="jiasu serve --engine ray")
    from jiasu.serve.server import require_extra as require_serve

    require_serve()


def check_replicas(replicas: Any) -> int:
    """`replicas` as a whole number of at least 1, else a one-sentence `ConfigError`."""
    if type(replicas) is not int or replicas < 1:
        raise ConfigError(f"--replicas is {replicas!r}; give a whole number of at least 1")
    return replicas


def application(
    directory: str | os.PathLike[str],
    settings: ServeSettings,
    *,
    replicas: int = 1,
    trust_code: bool = False,
    cpus_per_replica: float = 1.0,
) -> Any:
    """The Ray Serve application (a bound deployment) of `replicas` replicas serving the
    artifact in `directory`. Ray spreads the replicas over the cluster's nodes."""
    from ray import serve

    check_replicas(replicas)
    path = str(Path(directory).resolve())

    def build() -> Any:  # runs in each replica
        from jiasu.serve.server import load_served

        predictor = load_served(path, trust_code=trust_code)
        return _ready_when_warm(_build_app(predictor, settings))

    # The batcher answers 503 when its queue is full, so Ray must pass it every request up
    # to that point (its own default of a handful in flight would cap every batch).
    ongoing = settings.max_queue + settings.max_batch_size

    @serve.deployment(
        name=settings.name,
        num_replicas=replicas,
        max_ongoing_requests=ongoing,
        max_queued_requests=settings.max_queue,  # beyond: Ray's proxy answers 503 at once
        ray_actor_options={"num_cpus": cpus_per_replica},
        graceful_shutdown_timeout_s=settings.drain_s,
        health_check_period_s=HEALTH_PERIOD_S,
    )
    @serve.ingress(build)
    class JiasuModel:
        def check_health(self) -> None:
            model = self.app.state.model  # type: ignore[attr-defined]
            if model.warmup_error:
                raise RuntimeError(model.warmup_error)

    return JiasuModel.bind()  # type: ignore[attr-defined]


def _build_app(predictor: Any, settings: ServeSettings) -> Any:
    from jiasu.serve.app import build_app

    return build_app(predictor, settings)


def _ready_when_warm(app: Any) -> Any:
    """`app` whose lifespan startup ends only after the model's warm-up (and fails with
    the warm-up's error), so a replica is RUNNING only when it can answer."""
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(scope_app: Any) -> AsyncIterator[Any]:
        async with inner(scope_app) as state:
            model = app.state.model
            await model.wait_ready()
            if not model.ready:
                raise RuntimeError(model.warmup_error or "the model did not warm up")
            yield state

    app.router.lifespan_context = lifespan
    return app


def serve_on_ray(
    directory: str | os.PathLike[str],
    settings: ServeSettings,
    *,
    replicas: int = 1,
    address: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    trust_code: bool = False,
    on_ready: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Serve the artifact in `directory` with Ray Serve until SIGTERM/Ctrl-C (or `stop`).

    `on_ready` is called with the base URL once every replica is warm. The application is
    deleted on the way out; a Ray instance this call started is stopped with it.
    """
    require_extra()
    check_replicas(replicas)
    from jiasu.infer.artifact import load

    load(directory, trust_code=trust_code)  # a folder that is not an artifact: one sentence
    stop = stop or threading.Event()
    # Ray installs its own SIGTERM handler when it connects (it aborts the process): ours
    # goes in after it, so SIGTERM deletes the application and the process exits 0.
    with _connected(address) as local, _stop_on_signals(stop):
        _run_until(stop, directory, settings, replicas, host, port, trust_code, local, on_ready)


def _run_until(
    stop: threading.Event,
    directory: str | os.PathLike[str],
    settings: ServeSettings,
    replicas: int,
    host: str,
    port: int,
    trust_code: bool,
    local: bool,
    on_ready: Callable[[str], None] | None,
) -> None:
    from ray import serve

    app = application(directory, settings, replicas=replicas, trust_code=trust_code)
    serve.start(
        http_options={"host": host, "port": port, "keep_alive_timeout_s": settings.keep_alive_s},
        proxy_location="HeadOnly",
    )
    try:
        serve.run(app, name=settings.name, route_prefix="/", blocking=False)
        if on_ready is not None:
            on_ready(f"http://{host}:{port}")
        while not stop.wait(0.5):
            pass
    finally:
        with contextlib.suppress(Exception):
            serve.delete(settings.name)  # Ray drains the replicas within drain_s
        if local:
            serve.shutdown()


@contextlib.contextmanager
def _connected(address: str | None) -> Iterator[bool]:
    """Connected to the cluster at `address`, or to a loopback-only instance started
    here (yields True then; it is stopped on the way out)."""
    import ray

    if ray.is_initialized():
        yield False  # the caller's connection (a test, a notebook): theirs to close
        return
    if address is not None:
        try:
            ray.init(address=address, log_to_driver=False)
        except (ConnectionError, ValueError) as exc:
            raise ConfigError(
                f"cannot join the Ray cluster at --address {address} ({exc}); check the "
                "address (ray status prints it) or leave --address out to run locally"
            ) from None
        try:
            yield False
        finally:
            ray.shutdown()  # our connection only; the cluster keeps running
        return
    from jiasu.engines.ray_local import check_loopback, loopback_only

    with loopback_only():
        ray.init(include_dashboard=False, log_to_driver=False)
        try:
            check_loopback(ray)
            yield True
        finally:
            ray.shutdown()


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set `stop` (main thread only), restored on the way out."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    for sig in saved:
        signal.signal(sig, lambda *_: stop.set())
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
