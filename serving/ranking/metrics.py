"""The ranking engine's Prometheus metrics: batching, work skipped, history cache, appends, models."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class RankingMetrics:
    """Registered in the server's registry, beside the host's per-RPC metrics."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry
        self.batch_requests = Histogram(
            "muse_batch_requests",
            "Score requests run together in one micro-batch",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=registry,
        )
        self.requests_scored = Counter(
            "muse_requests_scored",
            "Score requests whose model work ran to the end",
            registry=registry,
        )
        self.requests_skipped = Counter(
            "muse_requests_skipped",
            "Score requests dropped before their model work because the caller gave up",
            ["reason"],
            registry=registry,
        )
        self.cache_hits = Counter(
            "muse_history_cache_hits", "Per-user history cache hits", registry=registry
        )
        self.cache_misses = Counter(
            "muse_history_cache_misses", "Per-user history cache misses", registry=registry
        )
        self.cache_hit_rate = Gauge(
            "muse_history_cache_hit_rate",
            "Hits / lookups of the per-user history cache since start",
            registry=registry,
        )
        self.cache_hit_rate.set_function(self._hit_rate)
        self.behaviours_appended = Counter(
            "muse_behaviours_appended",
            "Behaviours made durable by AppendBehaviors",
            registry=registry,
        )
        self.models_loaded = Gauge(
            "muse_model_loaded",
            "1 for each loaded model bundle",
            ["bundle", "version"],
            registry=registry,
        )

    def _hit_rate(self) -> float:
        hits = self._registry.get_sample_value("muse_history_cache_hits_total") or 0.0
        misses = self._registry.get_sample_value("muse_history_cache_misses_total") or 0.0
        return hits / (hits + misses) if hits + misses else 0.0
