"""The Converse session store: bounded, TTL-expired, LRU-evicted, turns capped."""

from __future__ import annotations

import pytest

from features.dialogues import Turn
from serving.conversational.session_store import SessionStore


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def turns(*texts: str) -> tuple[Turn, ...]:
    return tuple(Turn("user", text) for text in texts)


def test_least_recently_used_session_is_evicted_first() -> None:
    clock = Clock()
    store = SessionStore(max_sessions=2, ttl_seconds=100.0, max_turns=10, clock=clock)
    store.store("a", turns("a1"))
    clock.now = 1.0
    store.store("b", turns("b1"))
    clock.now = 2.0
    assert store.turns("a") == turns("a1")  # a is now the most recently used
    store.store("c", turns("c1"))
    assert store.turns("b") == ()
    assert store.turns("a") == turns("a1")
    assert store.turns("c") == turns("c1")
    assert store.evicted == 1
    assert len(store) == 2


def test_sessions_expire_after_their_ttl_unused() -> None:
    clock = Clock()
    store = SessionStore(max_sessions=10, ttl_seconds=5.0, max_turns=10, clock=clock)
    store.store("a", turns("a1"))
    store.store("b", turns("b1"))
    clock.now = 4.0
    assert store.turns("b") == turns("b1")  # used: its TTL restarts
    clock.now = 6.0
    assert store.turns("a") == ()
    assert store.turns("b") == turns("b1")
    assert store.expired == 1
    clock.now = 20.0
    assert len(store) == 0
    assert store.expired == 2


def test_a_dialogue_keeps_only_its_latest_turns() -> None:
    store = SessionStore(max_sessions=2, ttl_seconds=10.0, max_turns=3)
    store.store("a", turns("1", "2", "3", "4", "5"))
    assert store.turns("a") == turns("3", "4", "5")


@pytest.mark.parametrize(("sessions", "ttl", "kept"), [(0, 1.0, 1), (1, 0.0, 1), (1, 1.0, 0)])
def test_bounds_must_be_positive(sessions: int, ttl: float, kept: int) -> None:
    with pytest.raises(ValueError, match="max_sessions"):
        SessionStore(sessions, ttl, kept)
