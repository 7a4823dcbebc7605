"""Configuration of the gRPC server and its ranking service (``configs/serving/*.toml``). No torch."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from serving.conversational.conversational_config import ConversationalConfig
from serving.exposure_log_config import ExposureLogConfig
from serving.item2item.similar_items_config import SimilarItemsConfig
from serving.local_behaviour_store_config import LocalBehaviourStoreConfig

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True)
class BatchingConfig:
    """Adaptive micro-batching: no fixed wait; at most this many candidate rows per model call,
    and up to ``workers`` batches at once (one's search overlaps another's model call)."""

    max_batch_candidates: int = 8192
    workers: int = 2

    def __post_init__(self) -> None:
        if self.max_batch_candidates < 1 or self.workers < 1:
            raise ValueError("batching.max_batch_candidates and batching.workers must be ≥ 1")


@dataclass(frozen=True)
class LimitsConfig:
    """What one request may ask for, and how much work the server admits at once."""

    max_candidates: int = 2000
    # Requests larger than this get INVALID_ARGUMENT naming the field that is too big; gRPC's
    # own hard limit sits at grpc_hard_limit_factor × this as a memory backstop.
    max_message_bytes: int = 1 << 20
    grpc_hard_limit_factor: int = 4
    # Admitted (queued + running) requests; more are refused at once with RESOURCE_EXHAUSTED.
    max_in_flight: int = 64

    def __post_init__(self) -> None:
        if min(self.max_candidates, self.max_in_flight) < 1:
            raise ValueError("limits must be ≥ 1")
        if self.max_message_bytes < 1024 or self.grpc_hard_limit_factor < 1:
            raise ValueError(
                "limits.max_message_bytes must be ≥ 1024 and grpc_hard_limit_factor ≥ 1"
            )


@dataclass(frozen=True)
class ServingConfig:
    """The server (where it listens, its limits, its drain) and the ranking service it hosts.

    ``bundle_root`` holds one directory per model bundle (``muse export --out``). With an
    ``experiments`` config, every bundle it names is loaded and each user is routed to their
    variant; without one (``experiments = ""`` on the command line), everyone gets
    ``default_bundle``. Ports may be 0 (any free port; the
    bound ports are logged and written to ``--ready-file``); ``metrics_port = -1`` disables /metrics.
    """

    bundle_root: Path
    store: LocalBehaviourStoreConfig
    host: str = "127.0.0.1"
    port: int = 50051
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9464
    default_bundle: str = "muse"
    experiments: Path | None = None
    # Where and how often exposures are written (only with an experiments config).
    exposure_log: ExposureLogConfig = field(
        default_factory=lambda: ExposureLogConfig(directory=Path("runs/serving/exposures"))
    )
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    batching: BatchingConfig = field(default_factory=BatchingConfig)
    # Per-user cache of gathered, normalised history embeddings (bytes, LRU).
    history_cache_bytes: int = 1 << 30
    # Lifelong history used per request (most recent behaviours), unless a variant overrides it.
    max_history_length: int = 100_000
    # Seconds in-flight requests get to finish after SIGTERM before they are cut off.
    drain_grace_seconds: float = 10.0
    onnx_threads: int = 1
    torch_threads: int = 1
    # The similar-items service, hosted beside ranking when this table is present.
    similar_items: SimilarItemsConfig | None = None
    # The conversational service (Converse), hosted beside ranking when this table is present.
    conversational: ConversationalConfig | None = None
    # Hash the item embedding table at start to check it is the one the bundle was built on.
    verify_item_table: bool = True
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535 or not -1 <= self.metrics_port <= 65535:
            raise ValueError("port must be in [0, 65535] and metrics_port in [-1, 65535]")
        if self.history_cache_bytes < 0 or self.max_history_length < 1:
            raise ValueError("history_cache_bytes must be ≥ 0 and max_history_length ≥ 1")
        if self.drain_grace_seconds < 0:
            raise ValueError("drain_grace_seconds must be ≥ 0")
        if self.onnx_threads < 1 or self.torch_threads < 1:
            raise ValueError("onnx_threads and torch_threads must be ≥ 1")
        if self.log_level.upper() not in LOG_LEVELS:
            raise ValueError(
                f"log_level must be one of {', '.join(LOG_LEVELS)}, got {self.log_level!r}"
            )
