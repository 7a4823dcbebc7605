"""Adaptive micro-batching: lone jobs go at once, queued jobs go together, abandoned jobs never run."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from serving.admission import Admission
from serving.errors import DeadlineExpired, Overloaded
from serving.micro_batcher import MicroBatcher


class RecordingBatch:
    """Batch function that squares numbers; the first call can be held to build a queue."""

    def __init__(self, hold_first: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.release = threading.Event()
        self.started = threading.Event()
        if not hold_first:
            self.release.set()

    def __call__(self, batch):
        self.started.set()
        self.release.wait(5)
        self.batches.append([pending.job for pending in batch])
        return [ValueError("odd") if pending.job == 13 else pending.job**2 for pending in batch]


async def _with_batcher(function, max_weight=100, **hooks):
    executor = ThreadPoolExecutor(1)
    batcher = MicroBatcher(function, executor, max_batch_weight=max_weight, **hooks)
    batcher.start()
    return batcher, executor


def test_lone_job_runs_as_a_batch_of_one_without_waiting() -> None:
    async def scenario():
        function = RecordingBatch()
        batcher, executor = await _with_batcher(function)
        started = time.perf_counter()
        result = await batcher.submit(7, weight=1, deadline=None)
        elapsed = time.perf_counter() - started
        await batcher.close()
        executor.shutdown()
        return result, function.batches, elapsed

    result, batches, elapsed = asyncio.run(scenario())
    assert result == 49
    assert batches == [[7]]
    assert elapsed < 1.0  # Generous on a busy machine; a fixed wait would be structural, not noise.


def test_jobs_queued_behind_a_running_batch_go_together_in_order() -> None:
    async def scenario():
        function = RecordingBatch(hold_first=True)
        batcher, executor = await _with_batcher(function, max_weight=3)
        first = asyncio.create_task(batcher.submit(1, 1, None))
        await asyncio.to_thread(function.started.wait, 5)
        rest = [asyncio.create_task(batcher.submit(job, 1, None)) for job in (2, 3, 4, 5, 13)]
        await asyncio.sleep(0.05)
        function.release.set()
        results = await asyncio.gather(first, *rest, return_exceptions=True)
        await batcher.close()
        executor.shutdown()
        return results, function.batches

    results, batches = asyncio.run(scenario())
    assert batches == [[1], [2, 3, 4], [5, 13]]  # max_batch_weight 3 splits the queue
    assert results[:5] == [1, 4, 9, 16, 25]
    assert isinstance(results[5], ValueError)  # one job's failure stays with that job


def test_jobs_whose_caller_gave_up_are_skipped_before_any_work() -> None:
    skipped: list[str] = []

    async def scenario():
        function = RecordingBatch(hold_first=True)
        batcher, executor = await _with_batcher(function, on_skip=skipped.append)
        first = asyncio.create_task(batcher.submit(1, 1, None))
        await asyncio.to_thread(function.started.wait, 5)
        expiring = asyncio.create_task(batcher.submit(2, 1, time.monotonic() + 0.02))
        cancelled = asyncio.create_task(batcher.submit(3, 1, None))
        kept = asyncio.create_task(batcher.submit(4, 1, time.monotonic() + 30))
        await asyncio.sleep(0.1)
        cancelled.cancel()
        await asyncio.sleep(0)
        function.release.set()
        outcomes = await asyncio.gather(first, expiring, cancelled, kept, return_exceptions=True)
        await batcher.close()
        executor.shutdown()
        return outcomes, function.batches

    outcomes, batches = asyncio.run(scenario())
    assert batches == [[1], [4]]
    assert outcomes[0] == 1 and outcomes[3] == 16
    assert isinstance(outcomes[1], DeadlineExpired)
    assert isinstance(outcomes[2], asyncio.CancelledError)
    assert sorted(skipped) == ["cancelled", "deadline"]


def test_admission_refuses_beyond_capacity_and_frees_slots() -> None:
    admission = Admission(max_in_flight=2)
    with admission.admit(), admission.admit():
        with pytest.raises(Overloaded, match="2 requests in flight"), admission.admit():
            pass
        assert admission.in_flight == 2
    assert admission.in_flight == 0
    with admission.admit():
        assert admission.in_flight == 1


def test_two_workers_run_two_batches_at_once() -> None:
    async def scenario():
        function = RecordingBatch(hold_first=True)
        executor = ThreadPoolExecutor(2)
        batcher = MicroBatcher(function, executor, max_batch_weight=100, workers=2)
        batcher.start()
        first = asyncio.create_task(batcher.submit(1, 1, None))
        await asyncio.to_thread(function.started.wait, 5)
        function.started.clear()
        second = asyncio.create_task(batcher.submit(2, 1, None))
        # The second job starts while the first batch is still held: a second worker took it.
        started = await asyncio.to_thread(function.started.wait, 5)
        third = asyncio.create_task(batcher.submit(3, 1, None))
        await asyncio.sleep(0.05)
        function.release.set()
        results = await asyncio.gather(first, second, third)
        await batcher.close()
        executor.shutdown()
        return started, results, function.batches

    started, results, batches = asyncio.run(scenario())
    assert started and results == [1, 4, 9]
    assert sorted(map(tuple, batches)) == [(1,), (2,), (3,)]
