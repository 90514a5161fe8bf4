"""Prometheus metrics of one worker: requests and latency per endpoint, and the model.

Each app owns its :class:`prometheus_client.CollectorRegistry`, so two apps
in one process (tests) do not share counters. With ``--workers N`` every
worker counts its own requests; a scrape reaches one worker, whose
``engine_worker_pid`` label tells which.

Endpoints are labelled by their route template (``/v1/scores/latest``), never
by the raw path, so a client cannot create unbounded label values (a 503
or 413 refused before routing still gets the template of the route its path
matches); paths that match no route are counted as ``"unmatched"``.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "LATENCY_BUCKETS", "ServiceMetrics"]

#: Latency buckets in seconds: fine below 50 ms, where the scoring endpoints live.
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip


class ServiceMetrics:
    """The counters, histogram and gauges of one app."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "engine_http_requests",
            "HTTP requests by endpoint, method and status code.",
            ["endpoint", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "engine_http_request_duration_seconds",
            "Time from request to response, by endpoint.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "engine_http_requests_in_flight",
            "Requests being handled by this worker.",
            registry=self.registry,
        )
        self.model = Gauge(
            "engine_model_info",
            "The model this worker serves (value 1; labels say which).",
            ["model_id", "version", "reference", "engine_worker_pid"],
            registry=self.registry,
        )
        self.reloads = Counter(
            "engine_model_reloads",
            "Reloads that swapped the served model.",
            registry=self.registry,
        )

    def set_model(self, model_id: str, version: str, reference: str) -> None:
        """Label the served model (the previous label set is removed)."""
        self.model.clear()
        self.model.labels(model_id, version, reference, str(os.getpid())).set(1)

    def observe(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        """Count one finished request."""
        self.requests.labels(endpoint, method, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition of this app's registry."""
        return generate_latest(self.registry)
