"""Prometheus metrics for `jiasu serve` (prometheus_client, one registry per app, so two
apps in one process, as in the tests or a Ray replica, do not share counts)."""

from __future__ import annotations

from typing import Any

from jiasu.serve.batcher import BatcherStats, BatchRecord

# Seconds: from 0.1 ms (a small model's batch) to 10 s (a queue under overload).
TIME_BUCKETS = (
    1e-4,
    2.5e-4,
    5e-4,
    1e-3,
    2.5e-3,
    5e-3,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)  # samples per model call


class ServeMetrics:
    """Counts what the server did: requests and failures by code, queue and compute time,
    batch sizes, and the requests in flight; `render` gives the text format."""

    def __init__(self, stats: Any) -> None:
        """`stats` is a callable returning the batcher's `BatcherStats` (read at scrape)."""
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "jiasu_requests",
            "HTTP requests answered, by endpoint and status code",
            ["endpoint", "code"],
            registry=self.registry,
        )
        self.failures = Counter(
            "jiasu_request_failures",
            "HTTP requests answered with a 4xx or 5xx status",
            ["endpoint", "code"],
            registry=self.registry,
        )
        self.queue_seconds = Histogram(
            "jiasu_queue_seconds",
            "Seconds a request waited before its model call",
            buckets=TIME_BUCKETS,
            registry=self.registry,
        )
        self.compute_seconds = Histogram(
            "jiasu_compute_seconds",
            "Seconds of one model call (one batch)",
            buckets=TIME_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "jiasu_batch_size",
            "Samples per model call",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        in_flight = Gauge(
            "jiasu_in_flight", "Requests accepted and not yet answered", registry=self.registry
        )
        queue_depth = Gauge(
            "jiasu_queue_depth", "Requests waiting for a batch", registry=self.registry
        )
        in_flight.set_function(lambda: _stats(stats).in_flight)
        queue_depth.set_function(lambda: _stats(stats).queue_depth)

    def observe_request(self, endpoint: str, code: int) -> None:
        self.requests.labels(endpoint, str(code)).inc()
        if code >= 400:
            self.failures.labels(endpoint, str(code)).inc()

    def observe_batch(self, record: BatchRecord) -> None:
        self.compute_seconds.observe(record.compute_s)
        self.batch_size.observe(record.samples)
        for wait in record.queue_s:
            self.queue_seconds.observe(wait)

    def render(self) -> tuple[bytes, str]:
        """The body and content type of a /metrics response."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def _stats(stats: Any) -> BatcherStats:
    value: BatcherStats = stats()
    return value
