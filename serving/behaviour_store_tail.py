"""Online events of one user that are not yet compacted, kept in memory as immutable chunks."""

from __future__ import annotations

import numpy as np

# Index columns serve reads; raw id columns let a segment be re-indexed for a new dataset.
STORE_EVENT_DTYPE = np.dtype(
    [
        ("item", "<i4"),
        ("category", "<i4"),
        ("timestamp", "<i8"),
        ("item_id", "<i8"),
        ("category_id", "<i8"),
        ("has_category", "?"),
    ]
)
COLUMNS: tuple[str, ...] = tuple(STORE_EVENT_DTYPE.names or ())


class TailEntry:
    """A user's uncompacted events: chunks (STORE_EVENT_DTYPE arrays, oldest first).

    ``stored`` counts the events held (at most the cap); ``appended`` counts every event ever
    added, which feeds the history version. Chunks are never mutated, so a reader may keep a
    snapshot of the list while appends continue.
    """

    __slots__ = ("appended", "chunks", "stored")

    def __init__(self) -> None:
        self.chunks: list[np.ndarray] = []
        self.stored = 0
        self.appended = 0

    def add(self, events: np.ndarray, max_length: int) -> None:
        """Append a chunk of new events, dropping the oldest beyond ``max_length``."""
        self._store(events, max_length)
        self.appended += events.size

    def extend(self, later: TailEntry, max_length: int) -> None:
        """Append every event of ``later`` (the same user's newer entry) to this one."""
        for chunk in later.chunks:
            self._store(chunk, max_length)
        self.appended += later.appended

    def _store(self, events: np.ndarray, max_length: int) -> None:
        self.chunks.append(events)
        self.stored += events.size
        # Merge like a binary counter: O(log n) chunks for reads, O(log n) copies per event.
        while len(self.chunks) >= 2 and self.chunks[-2].size <= self.chunks[-1].size:
            last = self.chunks.pop()
            self.chunks[-1] = np.concatenate((self.chunks[-1], last))
        while self.stored > max_length:
            excess = self.stored - max_length
            first = self.chunks[0]
            if first.size <= excess:
                self.chunks.pop(0)
                self.stored -= first.size
            else:
                self.chunks[0] = first[excess:]
                self.stored -= excess
