"""Build the next batches in a background thread while the model trains on the current one.

numpy gathers and torch conversions release the GIL for most of their time, so one thread is
enough to keep batch building off the training step's critical path.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

Item = TypeVar("Item")
Output = TypeVar("Output")

_DONE = object()


class Prefetcher(Generic[Output]):
    """Iterates ``build(item)`` for ``items`` in order, up to ``depth`` results ahead.

    Exceptions raised while building are re-raised in the consumer. ``close`` stops the thread
    early (used when training stops mid-epoch). depth 0 builds inline, without a thread.
    """

    def __init__(self, items: Iterable[Item], build: Callable[[Item], Output], depth: int) -> None:
        self._items = items
        self._build = build
        self._depth = depth
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max(depth, 1))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if depth > 0:
            self._thread = threading.Thread(target=self._run, name="batch-prefetch", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        try:
            for item in self._items:
                if self._stop.is_set():
                    return
                self._put(self._build(item))
        except BaseException as error:  # handed to the consumer, which re-raises it
            self._put(error)
            return
        self._put(_DONE)

    def _put(self, value: object) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(value, timeout=0.1)
                return
            except queue.Full:
                continue

    def __iter__(self) -> Iterator[Output]:
        if self._thread is None:
            for item in self._items:
                yield self._build(item)
            return
        while True:
            value = self._queue.get()
            if value is _DONE:
                return
            if isinstance(value, BaseException):
                raise value
            yield value  # type: ignore[misc]

    def close(self) -> None:
        """Stop the background thread and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
