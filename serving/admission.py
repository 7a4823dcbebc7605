"""Bounded admission: a fixed number of requests in flight; the rest are refused at once.

Refusing quickly (RESOURCE_EXHAUSTED) keeps latency and memory bounded under overload; clients
retry with backoff or go elsewhere, instead of every request timing out in a growing queue.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from serving.errors import Overloaded


class Admission:
    """Counts requests in flight on the event loop thread; refuses beyond ``max_in_flight``."""

    def __init__(self, max_in_flight: int) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.max_in_flight = max_in_flight
        self.in_flight = 0

    @contextlib.contextmanager
    def admit(self) -> Iterator[None]:
        """Hold one slot for the block; raises Overloaded when none is free."""
        if self.in_flight >= self.max_in_flight:
            raise Overloaded(
                f"server at capacity ({self.max_in_flight} requests in flight); retry later"
            )
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1
