"""Prometheus metrics for `jiasu serve` (prometheus_client, one registry per app, so two
apps in one process, as in the tests or a Ray replica, do not share counts).

With `--workers N` each process counts into files in a folder shared by all of them
(prometheus_client's multiprocess mode, chosen by `PROMETHEUS_MULTIPROC_DIR` before the
workers start), and a scrape, whichever process answers it, sums every worker's counts.
"""

from __future__ import annotations

import os
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
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's switch, read at import


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
        # summed over the live worker processes when there are several
        self.in_flight = Gauge(
            "jiasu_in_flight",
            "Requests accepted and not yet answered",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.queue_depth = Gauge(
            "jiasu_queue_depth",
            "Requests waiting for a batch",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.shared = bool(os.environ.get(MULTIPROCESS_DIR))
        self._stats = stats
        if not self.shared:  # read at scrape; shared gauges are files, set as things change
            self.in_flight.set_function(lambda: _stats(stats).in_flight)
            self.queue_depth.set_function(lambda: _stats(stats).queue_depth)

    def observe_request(self, endpoint: str, code: int) -> None:
        self.requests.labels(endpoint, str(code)).inc()
        if code >= 400:
            self.failures.labels(endpoint, str(code)).inc()
        self._refresh()

    def observe_batch(self, record: BatchRecord) -> None:
        self.compute_seconds.observe(record.compute_s)
        self.batch_size.observe(record.samples)
        for wait in record.queue_s:
            self.queue_seconds.observe(wait)
        self._refresh()

    def _refresh(self) -> None:
        if self.shared:
            now = _stats(self._stats)
            self.in_flight.set(now.in_flight)
            self.queue_depth.set(now.queue_depth)

    def render(self) -> tuple[bytes, str]:
        """The body and content type of a /metrics response (every worker's, summed)."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if not self.shared:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST


def _stats(stats: Any) -> BatcherStats:
    value: BatcherStats = stats()
    return value
