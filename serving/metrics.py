"""Prometheus metrics of one server, in their own registry (so tests can run several servers)."""

from __future__ import annotations

import contextvars
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    start_http_server,
)

# The variant that served the current RPC; the servicer sets it, the interceptor reads it.
variant_label: contextvars.ContextVar[str] = contextvars.ContextVar("variant_label", default="none")

_LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.004, 0.006, 0.008, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.06, 0.08,
    0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0,
)  # fmt: skip


class ServingMetrics:
    """Request counts by status and variant, latencies, batching, work skipped, cache hit rate."""

    def __init__(self) -> None:
        disable_created_metrics()  # the *_created series only add noise to every scrape
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "muse_requests",
            "RPCs answered, by method, status code and experiment variant",
            ["method", "status", "variant"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "muse_request_latency_seconds",
            "Server-side RPC latency, by method and variant",
            ["method", "variant"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_requests = Histogram(
            "muse_batch_requests",
            "Score requests run together in one micro-batch",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=self.registry,
        )
        self.requests_scored = Counter(
            "muse_requests_scored",
            "Score requests whose model work ran to the end",
            registry=self.registry,
        )
        self.requests_skipped = Counter(
            "muse_requests_skipped",
            "Score requests dropped before their model work because the caller gave up",
            ["reason"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "muse_requests_in_flight", "Admitted requests not yet answered", registry=self.registry
        )
        self.cache_hits = Counter(
            "muse_history_cache_hits", "Per-user history cache hits", registry=self.registry
        )
        self.cache_misses = Counter(
            "muse_history_cache_misses", "Per-user history cache misses", registry=self.registry
        )
        self.cache_hit_rate = Gauge(
            "muse_history_cache_hit_rate",
            "Hits / lookups of the per-user history cache since start",
            registry=self.registry,
        )
        self.cache_hit_rate.set_function(self._hit_rate)
        self.behaviors_appended = Counter(
            "muse_behaviors_appended",
            "Behaviours made durable by AppendBehaviors",
            registry=self.registry,
        )
        self.models_loaded = Gauge(
            "muse_model_loaded",
            "1 for each loaded model bundle",
            ["bundle", "version"],
            registry=self.registry,
        )

    def _hit_rate(self) -> float:
        hits = self.value("muse_history_cache_hits_total")
        misses = self.value("muse_history_cache_misses_total")
        return hits / (hits + misses) if hits + misses else 0.0

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        """Current value of one sample (for tests and the benchmark); 0 when absent."""
        found = self.registry.get_sample_value(name, labels or {})
        return float(found) if found is not None else 0.0

    def serve_http(self, host: str, port: int) -> Any:
        """Start the /metrics HTTP endpoint in a daemon thread; returns the HTTP server."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return server
