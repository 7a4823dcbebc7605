"""Per-user cache of prepared (gathered, normalised, packed) histories: MUSE's serving idea.

One user's request carries many candidates, and a user sends many requests: the gather of up to
100K history rows is done once and shared. Entries are keyed by user and a history version (a
user's new behaviours bump the version, so a stale entry is never served), bounded by bytes, and
evicted least-recently-used first. Thread-safe: the asyncio server runs searches in executor
threads (the native kernels release the GIL), and concurrent misses for the same user prepare
the history once.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import NamedTuple

from muse.search.prepared_history import PreparedHistory


@dataclass(frozen=True)
class HistoryCacheConfig:
    """max_bytes: budget for all cached histories (a 100K-row int8 history takes ~13.6 MB)."""

    max_bytes: int = 2 * 1024**3


class CacheStats(NamedTuple):
    """Counters since creation. hit_seconds: time spent finding hits; miss_seconds: preparing misses."""

    hits: int
    misses: int
    evictions: int
    entries: int
    bytes: int
    hit_seconds: float
    miss_seconds: float


class _Entry(NamedTuple):
    version: Hashable
    history: PreparedHistory


class HistoryCache:
    """Prepared histories by user, bounded by bytes, least recently used evicted first."""

    def __init__(self, config: HistoryCacheConfig | None = None) -> None:
        self.config = config or HistoryCacheConfig()
        if self.config.max_bytes < 0:
            raise ValueError("max_bytes must be ≥ 0")
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._preparing: dict[tuple[Hashable, Hashable], threading.Event] = {}
        self._lock = threading.Lock()
        self._bytes = 0
        self._hits = 0
        self._misses = 0
        self._evictions = 0
        self._hit_seconds = 0.0
        self._miss_seconds = 0.0

    def get(self, user_key: Hashable, version: Hashable) -> PreparedHistory | None:
        """The cached history of this user at this version, or None."""
        with self._lock:
            entry = self._entries.get(user_key)
            if entry is None or entry.version != version:
                return None
            self._entries.move_to_end(user_key)
            return entry.history

    def get_or_prepare(
        self,
        user_key: Hashable,
        version: Hashable,
        prepare: Callable[[], PreparedHistory],
    ) -> tuple[PreparedHistory, bool]:
        """(history, was_hit): the cached history, or ``prepare()``'s result, cached."""
        while True:
            started = time.perf_counter()
            with self._lock:
                entry = self._entries.get(user_key)
                if entry is not None and entry.version == version:
                    self._entries.move_to_end(user_key)
                    self._hits += 1
                    self._hit_seconds += time.perf_counter() - started
                    return entry.history, True
                pending = self._preparing.get((user_key, version))
                if pending is None:
                    pending = threading.Event()
                    self._preparing[(user_key, version)] = pending
                    break
            # Another thread is preparing this very history: wait for it, then look again.
            pending.wait()
        try:
            history = prepare()
            with self._lock:
                self._misses += 1
                self._miss_seconds += time.perf_counter() - started
                self._insert(user_key, version, history)
        finally:
            with self._lock:
                del self._preparing[(user_key, version)]
            pending.set()
        return history, False

    def put(self, user_key: Hashable, version: Hashable, history: PreparedHistory) -> None:
        """Cache ``history`` for this user (replacing any other version)."""
        with self._lock:
            self._insert(user_key, version, history)

    def invalidate(self, user_key: Hashable) -> None:
        """Drop this user's entry, if any."""
        with self._lock:
            entry = self._entries.pop(user_key, None)
            if entry is not None:
                self._bytes -= entry.history.nbytes

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(
                hits=self._hits,
                misses=self._misses,
                evictions=self._evictions,
                entries=len(self._entries),
                bytes=self._bytes,
                hit_seconds=self._hit_seconds,
                miss_seconds=self._miss_seconds,
            )

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def _insert(self, user_key: Hashable, version: Hashable, history: PreparedHistory) -> None:
        """Caller holds the lock. A history larger than the whole budget is not cached."""
        previous = self._entries.pop(user_key, None)
        if previous is not None:
            self._bytes -= previous.history.nbytes
        size = history.nbytes
        if size > self.config.max_bytes:
            return
        while self._entries and self._bytes + size > self.config.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= evicted.history.nbytes
            self._evictions += 1
        self._entries[user_key] = _Entry(version, history)
        self._bytes += size
