"""The background prefetcher keeps order, re-raises build errors and stops when closed."""

from __future__ import annotations

import threading

import pytest

from muse.training.prefetch import Prefetcher


@pytest.mark.parametrize("depth", [0, 1, 3])
def test_results_arrive_in_order(depth: int) -> None:
    assert list(Prefetcher(range(20), lambda x: x * x, depth)) == [x * x for x in range(20)]


def test_build_errors_reach_the_consumer() -> None:
    def build(x: int) -> int:
        if x == 3:
            raise ValueError("bad row 3")
        return x

    seen = []
    with pytest.raises(ValueError, match="bad row 3"):
        for value in Prefetcher(range(10), build, 2):
            seen.append(value)
    assert seen == [0, 1, 2]


def test_close_stops_the_thread_early() -> None:
    built = []
    prefetcher = Prefetcher(range(1000), lambda x: built.append(x) or x, 2)
    iterator = iter(prefetcher)
    assert next(iterator) == 0
    prefetcher.close()
    assert not any(t.name == "batch-prefetch" and t.is_alive() for t in threading.enumerate())
    assert len(built) < 10
