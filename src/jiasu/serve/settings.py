"""How `jiasu serve` batches, queues and times out: one frozen value shared by the local
server (uvicorn) and the Ray Serve deployment."""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

from jiasu.core.errors import ConfigError

# A model name goes into URLs (/v2/models/NAME/infer): letters, digits and - _ . only.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


@dataclasses.dataclass(frozen=True)
class ServeSettings:
    """The served model's name and the dynamic batcher's limits.

    >>> ServeSettings("mnist", max_batch_size=64).max_delay_ms
    2.0
    """

    name: str  # the model name in URLs; `jiasu serve` defaults it to the artifact's folder name
    max_batch_size: int = 32  # samples per model call
    max_delay_ms: float = 2.0  # longest a request waits for others to join its batch
    # Requests waiting (or admitted, their bodies being read); beyond: 503 + Retry-After at
    # once. Two bounds, since a count alone fits neither end: 256 refused the MNIST CNN
    # behind 512 connections work worth 8 ms of model time, while 1024 let ResNet-50's
    # 600 kB bodies grow the server by 284 MiB under overload (+39%; benchmarks/
    # serve_load.py). The bytes bound counts declared body sizes at admission (the queue
    # may always take one request when empty).
    max_queue: int = 1024
    max_queue_mb: float = 64.0
    # A request that would wait longer than this for the model (the batches ahead of it at
    # the recent call time) gets 503 at once; None: the request timeout. Set it to a latency
    # bound to shed early: each refusal costs the server a little, and closed-loop clients
    # that retry at once turn it into a flood (ResNet-50 at 64 clients with it at 2000 ms:
    # 16.8 answers/s and 27,455 refusals; 35.5 answers/s without, in an earlier run).
    max_wait_ms: float | None = None
    max_body_bytes: int = 16 << 20  # request bodies above this get 413
    timeout_s: float = 30.0  # per request, from arrival to answer; 504 after
    drain_s: float = 30.0  # on SIGTERM: finish in-flight work within this, then exit
    # An idle keep-alive connection is closed after this many seconds. uvicorn's 5 s closed
    # connections that paced clients were about to reuse (wrk offering 70 req/s over 512
    # connections, a send every 7 s each: 2,207 read errors in 60 s); 75 s is nginx's
    # default, above the 60 s idle timeout of common load balancers, so the balancer, not
    # the server, closes an idle connection and never sends on one being closed.
    keep_alive_s: int = 75

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ConfigError(
                f"model name {self.name!r} cannot be used in URLs; use letters, digits and "
                "- _ . (e.g. --name mnist)"
            )
        _positive_int("--max-batch-size", self.max_batch_size)
        _positive_int("--max-queue", self.max_queue)
        _number("--max-queue-mb", self.max_queue_mb, minimum=0.0, strict=True)
        _positive_int("--max-body-bytes", self.max_body_bytes)
        _number("--max-delay-ms", self.max_delay_ms, minimum=0.0, strict=False)
        _number("--timeout-s", self.timeout_s, minimum=0.0, strict=True)
        if self.max_wait_ms is not None:
            _number("--max-wait-ms", self.max_wait_ms, minimum=0.0, strict=True)
        _number("--drain-s", self.drain_s, minimum=0.0, strict=False)
        _positive_int("--keep-alive-s", self.keep_alive_s)

    @property
    def max_delay_s(self) -> float:
        return self.max_delay_ms / 1000.0

    @property
    def max_queue_bytes(self) -> float:
        return self.max_queue_mb * 2**20

    @property
    def max_wait_s(self) -> float:
        """The admission bound in seconds: `max_wait_ms`, else the request timeout."""
        return self.timeout_s if self.max_wait_ms is None else self.max_wait_ms / 1000.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ServeSettings:
        """Settings from `to_dict` output; unknown keys are a `ConfigError`."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"serve setting {unknown[0]!r} is unknown; known settings: "
                f"{', '.join(sorted(known))}"
            )
        return cls(**data)


def _positive_int(option: str, value: Any) -> None:
    if type(value) is not int or value < 1:
        raise ConfigError(f"{option} is {value!r}; give a whole number of at least 1")


def _number(option: str, value: Any, *, minimum: float, strict: bool) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < minimum or (strict and value == minimum):
        bound = "above" if strict else "at least"
        raise ConfigError(f"{option} is {value!r}; give a number {bound} {minimum:g}")
