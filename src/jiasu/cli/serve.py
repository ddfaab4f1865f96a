"""`jiasu serve`: an artifact from `jiasu optimize` behind an inference server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from jiasu.cli.options import MAX_WORKERS, trust_code_option
from jiasu.core.errors import ConfigError


@click.command()
@click.argument("artifact", type=click.Path(path_type=Path))
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; 0.0.0.0 for every interface (loopback by default).",
)
@click.option(
    "--port",
    type=int,
    default=8000,
    show_default=True,
    help="TCP port; 0 picks a free one (the URL printed says which).",
)
@click.option(
    "--name",
    default=None,
    help="The model's name in URLs (/v2/models/NAME). Default: the folder's name.",
)
@click.option(
    "--max-batch-size",
    type=int,
    default=None,
    help="Most samples per model call. Default: what --tune recorded, else 32.",
)
@click.option(
    "--max-delay-ms",
    type=float,
    default=None,
    help="Longest a request waits for others to join its batch. Default: what "
    "--tune recorded, else 2.",
)
@click.option(
    "--max-queue",
    type=int,
    default=1024,
    show_default=True,
    help="Requests waiting for a batch; beyond, 503 with Retry-After at once.",
)
@click.option(
    "--max-queue-mb",
    type=float,
    default=64.0,
    show_default=True,
    help="MiB of request bodies waiting for a batch; beyond, 503 with Retry-After at once.",
)
@click.option(
    "--max-wait-ms",
    type=float,
    default=None,
    help="A request that would wait longer than this for the model gets 503 at once "
    "(e.g. your latency bound, to shed load early). Default: --timeout-s.",
)
@click.option(
    "--max-body-mb",
    type=float,
    default=16.0,
    show_default=True,
    help="Largest request body in MiB; larger ones get 413.",
)
@click.option(
    "--timeout-s",
    type=float,
    default=30.0,
    show_default=True,
    help="A request not answered within this gets 504.",
)
@click.option(
    "--drain-s",
    type=float,
    default=30.0,
    show_default=True,
    help="On SIGTERM, answer the requests in flight within this, then exit.",
)
@click.option(
    "--keep-alive-s",
    type=click.IntRange(min=1),
    default=75,
    show_default=True,
    help="Close a client's idle keep-alive connection after this many seconds (keep it "
    "above a load balancer's idle timeout).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1, max=MAX_WORKERS),
    default=1,
    show_default=True,
    help="uvicorn processes on this machine (--engine local); "
    "each loads the model and batches its own requests.",
)
@click.option(
    "--engine",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="local: uvicorn on this machine; ray: Ray Serve replicas spread over a cluster.",
)
@click.option(
    "--replicas",
    type=click.IntRange(min=1),
    default=None,
    help="--engine ray: model replicas (default 1).",
)
@click.option(
    "--address",
    default=None,
    help="--engine ray: the Ray cluster to join (default: a local instance).",
)
@click.option(
    "--tune",
    is_flag=True,
    help="First measure throughput and latency over batch sizes and delays, record "
    "the best settings under --p99-ms in the artifact, then serve with them.",
)
@click.option(
    "--p99-ms", type=float, default=None, help="--tune: the p99 latency bound in milliseconds."
)
@click.option(
    "--access-log/--no-access-log",
    default=True,
    show_default=True,
    help="One JSON line per request on stderr.",
)
@trust_code_option
def serve(
    artifact: Path,
    host: str,
    port: int,
    name: str | None,
    max_batch_size: int | None,
    max_delay_ms: float | None,
    max_queue: int,
    max_queue_mb: float,
    max_wait_ms: float | None,
    max_body_mb: float,
    timeout_s: float,
    drain_s: float,
    keep_alive_s: int,
    workers: int,
    engine: str,
    replicas: int | None,
    address: str | None,
    tune: bool,
    p99_ms: float | None,
    access_log: bool,
    trust_code: bool,
) -> None:
    """Serve the inference ARTIFACT (from `jiasu optimize --out`, or a model directory of
    `jiasu train --save`) over HTTP with dynamic batching, until SIGTERM or Ctrl-C.

    The Open Inference Protocol (KServe v2): GET /v2/health/ready, GET /v2/models/NAME,
    POST /v2/models/NAME/infer (Triton's clients work as they are); POST
    /v1/models/NAME/predict takes an .npy body or a PNG/JPEG image; GET /metrics for
    Prometheus. Requests that arrive together run as one batch of up to --max-batch-size
    samples, waiting at most --max-delay-ms.
    """
    from jiasu.serve import server
    from jiasu.serve.settings import ServeSettings

    if engine == "local" and (replicas is not None or address is not None):
        raise ConfigError(
            "--replicas and --address apply to --engine ray; on one machine use --workers"
        )
    if engine == "ray" and workers != 1:
        raise ConfigError("--workers applies to --engine local; with --engine ray use --replicas")
    if p99_ms is not None and not tune:
        raise ConfigError("--p99-ms is the bound for --tune; add --tune, or leave it out")
    if tune and p99_ms is None:
        raise ConfigError("--tune needs a latency bound: add --p99-ms (e.g. --p99-ms 50)")
    server.require_extra()
    name = name or server.default_name(artifact)
    if tune:
        _tune(artifact, name, p99_ms, trust_code)
    batching = _batching(artifact, max_batch_size, max_delay_ms, max_wait_ms)
    settings = ServeSettings(
        name,
        max_queue=max_queue,
        max_queue_mb=max_queue_mb,
        max_body_bytes=_body_bytes(max_body_mb),
        timeout_s=timeout_s,
        drain_s=drain_s,
        keep_alive_s=keep_alive_s,
        **batching,
    )
    if engine == "ray":
        from jiasu.serve.ray_engine import serve_on_ray

        serve_on_ray(
            artifact,
            settings,
            replicas=replicas or 1,
            address=address,
            host=host,
            port=port,
            trust_code=trust_code,
            on_ready=lambda url: _announce(url, settings, "Ray Serve"),
        )
        return
    from jiasu.infer.artifact import load

    predictor = load(artifact, trust_code=trust_code)  # not an artifact: one sentence
    sock = server.listen(host, port)  # a port in use: one sentence
    shown = f"[{host}]" if ":" in host else host
    _announce(f"http://{shown}:{server.bound_port(sock)}", settings, predictor.name)
    server.run(predictor, settings, sock, workers=workers, access_log=access_log)
    click.echo("stopped", err=True)


def _announce(url: str, settings: Any, what: str) -> None:
    click.echo(
        f"serving {settings.name} ({what}) at {url}: POST /v2/models/{settings.name}/infer, "
        f"ready at GET /v2/health/ready; max batch {settings.max_batch_size}, max delay "
        f"{settings.max_delay_ms:g} ms, refusing waits over {settings.max_wait_s * 1000:g} ms",
        err=True,
    )


def _body_bytes(mib: float) -> int:
    if not mib > 0:
        raise ConfigError(f"--max-body-mb is {mib}; give a size above 0 (e.g. 16)")
    return max(1, int(mib * (1 << 20)))


def _batching(
    artifact: Path,
    max_batch_size: int | None,
    max_delay_ms: float | None,
    max_wait_ms: float | None,
) -> dict[str, Any]:
    """The batch size, delay and wait bound: given ones win, then what --tune recorded,
    then defaults."""
    from jiasu.serve.tune import recorded_settings

    recorded = recorded_settings(artifact)
    chosen = {
        "max_batch_size": max_batch_size,
        "max_delay_ms": max_delay_ms,
        "max_wait_ms": max_wait_ms,
    }
    return {
        key: value if value is not None else recorded[key]
        for key, value in chosen.items()
        if value is not None or key in recorded
    }


def _tune(artifact: Path, name: str, p99_ms: float | None, trust_code: bool) -> None:
    from jiasu.serve.tune import tune

    assert p99_ms is not None
    result = tune(
        artifact,
        p99_ms=p99_ms,
        name=name,
        trust_code=trust_code,
        progress=lambda line: click.echo(line, err=True),
    )
    click.echo(result.text())
