"""Each conversation's dialogue so far, in memory: bounded sessions, a TTL, LRU eviction.

A session unused for ``ttl_seconds`` is gone (its next turn starts a new dialogue); past
``max_sessions`` the least recently used one is evicted; a dialogue keeps its latest
``max_turns`` turns. The store lives in one server process (replicas do not share it: a client
that needs that sends the whole dialogue instead). Torch-free.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable

from features.dialogues import Turn


class SessionStore:
    """session id → its turns, oldest first; safe to share between threads."""

    def __init__(
        self,
        max_sessions: int,
        ttl_seconds: float,
        max_turns: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_sessions < 1 or ttl_seconds <= 0 or max_turns < 1:
            raise ValueError("max_sessions and max_turns must be ≥ 1 and ttl_seconds > 0")
        self.max_sessions = max_sessions
        self.ttl_seconds = ttl_seconds
        self.max_turns = max_turns
        self._clock = clock
        # Least recently used first: session id → (last use, turns).
        self._sessions: collections.OrderedDict[str, tuple[float, tuple[Turn, ...]]] = (
            collections.OrderedDict()
        )
        self._lock = threading.Lock()
        self.evicted = 0  # pushed out by newer sessions
        self.expired = 0  # outlived the TTL

    def __len__(self) -> int:
        """Live sessions (expired ones are dropped first)."""
        with self._lock:
            self._expire(self._clock())
            return len(self._sessions)

    def turns(self, session_id: str) -> tuple[Turn, ...]:
        """The session's turns (empty for an unknown or expired one); marks it used."""
        with self._lock:
            now = self._clock()
            self._expire(now)
            held = self._sessions.get(session_id)
            if held is None:
                return ()
            self._sessions[session_id] = (now, held[1])
            self._sessions.move_to_end(session_id)
            return held[1]

    def store(self, session_id: str, turns: tuple[Turn, ...]) -> None:
        """Replace the session's turns (the latest ``max_turns`` kept), evicting as needed."""
        with self._lock:
            now = self._clock()
            self._expire(now)
            self._sessions[session_id] = (now, tuple(turns[-self.max_turns :]))
            self._sessions.move_to_end(session_id)
            while len(self._sessions) > self.max_sessions:
                self._sessions.popitem(last=False)
                self.evicted += 1

    def _expire(self, now: float) -> None:
        # Oldest use first, so expiry stops at the first live session.
        while self._sessions:
            session_id, (used, _) = next(iter(self._sessions.items()))
            if now - used < self.ttl_seconds:
                break
            del self._sessions[session_id]
            self.expired += 1
