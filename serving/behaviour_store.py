"""The behaviour store interface: a user's lifelong history in, new behaviours out, durably.

The server depends only on :class:`BehaviourStore`; :mod:`serving.local_behaviour_store` is the
embedded default (memory-mapped offline sequences + a local append-only log). A networked store
implements the same three methods.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol, runtime_checkable

import numpy as np


class BehaviourEvent(NamedTuple):
    """One online behaviour, in raw ids as the caller knows them."""

    item_id: int
    # Event time in seconds since the epoch.
    timestamp: int
    # Raw category id when the caller knows it; otherwise the item table's category is used.
    category_id: int | None = None


class UserHistory(NamedTuple):
    """A user's lifelong history in dataset indices, oldest first, capped at the store's maximum.

    ``items`` and ``categories`` are (L,) int32 (0 padding never appears; 1 = out of vocabulary)
    and must be treated as read-only. ``version`` changes whenever the history changes, so caches
    of work derived from a history (the GSU search) can key on ``(user_id, version)``.
    """

    items: np.ndarray
    categories: np.ndarray
    version: int


@runtime_checkable
class BehaviourStore(Protocol):
    """Where lifelong histories live. Implementations are thread-safe."""

    def history(self, user_id: int) -> UserHistory:
        """The user's history; an unknown user gets empty arrays and version 0."""
        ...

    def append(self, user_id: int, events: Sequence[BehaviourEvent]) -> int:
        """Add events (oldest first) to the user's history; returns the new version.

        Returns only once the events are durable. Raises ``serving.errors.InvalidArgument`` naming
        the field for bad input and ``serving.errors.Overloaded`` when the store cannot keep up.
        """
        ...

    def close(self) -> None:
        """Flush and release resources; idempotent."""
        ...
