"""Prometheus metrics of one server process, in their own registry (so tests can run several).

The host's metrics (every RPC of every service by method, status and variant; latency; requests
in flight) live here; each service registers its own metrics in the same registry, so one
/metrics endpoint serves them all.
"""

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

# The experiment variant that served the current RPC; a servicer sets it, the interceptor reads
# it ("none" for services and RPCs without experiments).
variant_label: contextvars.ContextVar[str] = contextvars.ContextVar("variant_label", default="none")

_LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.004, 0.006, 0.008, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.06, 0.08,
    0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0,
)  # fmt: skip


class ServingMetrics:
    """The process's registry, with request counts by status and variant, latencies, in flight."""

    def __init__(self) -> None:
        disable_created_metrics()  # the *_created series only add noise to every scrape
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "muse_requests",
            "RPCs answered, by service, method, status code and experiment variant",
            ["service", "method", "status", "variant"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "muse_request_latency_seconds",
            "Server-side RPC latency, by service, method and variant",
            ["service", "method", "variant"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "muse_requests_in_flight", "Admitted requests not yet answered", registry=self.registry
        )

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        """Current value of one sample (for tests and the benchmark); 0 when absent."""
        found = self.registry.get_sample_value(name, labels or {})
        return float(found) if found is not None else 0.0

    def serve_http(self, host: str, port: int) -> Any:
        """Start the /metrics HTTP endpoint in a daemon thread; returns the HTTP server."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return server
