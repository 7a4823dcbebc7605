"""Configuration of the embedded behaviour store (offline dataset + local append-only log)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path


class FsyncPolicy(enum.Enum):
    """When appended events reach stable storage."""

    # fsync before append returns (concurrent appends share one fsync): survives power loss.
    ALWAYS = "always"
    # write() before append returns: survives a killed process, not a lost machine.
    NEVER = "never"


@dataclass(frozen=True)
class LocalBehaviourStoreConfig:
    """Paths, the sequence cap, durability and compaction thresholds of the embedded store."""

    # A features.dataset directory: offline sequences (memory-mapped), users, vocabularies.
    dataset: Path
    # Directory of the online log and compacted segments (created when missing).
    directory: Path
    # Histories keep the most recent behaviours up to this length.
    max_length: int = 100_000
    fsync: FsyncPolicy = FsyncPolicy.ALWAYS
    # Compact in the background once the in-memory tail holds this many events ...
    compact_after_events: int = 1_000_000
    # ... or the live log file reaches this size.
    compact_after_log_bytes: int = 256 * 1024 * 1024
    # Appends are refused (Overloaded) while this many events wait for a compaction that lags.
    max_tail_events: int = 4_000_000
    # The most events one append call may carry.
    max_events_per_append: int = 10_000

    def __post_init__(self) -> None:
        if self.max_length < 1:
            raise ValueError(f"max_length must be at least 1, got {self.max_length}")
        if self.compact_after_events < 1 or self.compact_after_log_bytes < 1:
            raise ValueError("compaction thresholds must be positive")
        if self.max_tail_events < self.compact_after_events:
            raise ValueError("max_tail_events must be at least compact_after_events")
        if self.max_events_per_append < 1:
            raise ValueError("max_events_per_append must be at least 1")
