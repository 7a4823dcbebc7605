"""Adaptive micro-batching: concurrent requests share one model call, a lone request never waits.

There is no fixed batching delay. Up to ``workers`` batches run at once on the executor; a
request that arrives while a worker is free is dispatched at once (a batch of one), and requests
that arrive while every worker is busy wait only until one frees, then all go together. So the
batch size follows the load by itself, which is what a fixed "max queue delay" only approximates.
Two workers let one batch's search overlap another's model call on a 2-core machine.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from serving.errors import DeadlineExpired, NotReady

Job = TypeVar("Job")


@dataclass(eq=False)
class PendingJob(Generic[Job]):
    """One queued request: the job, its weight (e.g. candidate count) and when its caller gives up."""

    job: Job
    weight: int
    deadline: float | None  # time.monotonic() seconds; None = no deadline
    future: asyncio.Future[Any] = field(repr=False)
    cancelled: bool = False  # Set on the event loop when the caller's RPC is cancelled.

    def abandoned(self) -> bool:
        """True when nobody waits for the answer any more; work for it should be skipped."""
        return self.cancelled or (self.deadline is not None and time.monotonic() >= self.deadline)


# Runs in the worker thread; returns one result or exception per job, in order.
BatchFunction = Callable[[Sequence[PendingJob[Any]]], Sequence[Any]]


class MicroBatcher(Generic[Job]):
    """Queues jobs and runs them in batches of up to ``max_batch_weight`` on ``executor``,
    at most ``workers`` batches at a time (the executor needs that many threads)."""

    def __init__(
        self,
        run_batch: BatchFunction,
        executor: Executor,
        max_batch_weight: int,
        workers: int = 1,
        on_skip: Callable[[str], None] = lambda reason: None,
        on_batch: Callable[[int], None] = lambda size: None,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self._run_batch = run_batch
        self._executor = executor
        self._max_batch_weight = max_batch_weight
        self._free_workers = workers
        self._running: set[asyncio.Task[None]] = set()
        self._on_skip = on_skip
        self._on_batch = on_batch
        self._pending: collections.deque[PendingJob[Job]] = collections.deque()
        self._wake = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._closed = False

    def start(self) -> None:
        """Start the dispatch loop on the running event loop."""
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._dispatch_forever())

    @property
    def queued(self) -> int:
        return len(self._pending)

    async def submit(self, job: Job, weight: int, deadline: float | None) -> Any:
        """Queue ``job`` and wait for its result; raises what the batch function returned for it."""
        if self._closed:
            raise NotReady("server is shutting down")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        pending = PendingJob(job=job, weight=weight, deadline=deadline, future=future)
        self._pending.append(pending)
        self._wake.set()
        try:
            return await future
        except asyncio.CancelledError:
            pending.cancelled = True
            raise

    async def close(self) -> None:
        """Finish what is queued, then stop the dispatch loop."""
        self._closed = True
        self._wake.set()
        if self._worker is not None:
            await self._worker

    def _take_batch(self) -> list[PendingJob[Job]]:
        batch: list[PendingJob[Job]] = []
        weight = 0
        while self._pending:
            pending = self._pending[0]
            if pending.abandoned():
                self._pending.popleft()
                self._on_skip("cancelled" if pending.cancelled else "deadline")
                if not pending.future.done():
                    pending.future.set_exception(DeadlineExpired("deadline passed while queued"))
                continue
            if batch and weight + pending.weight > self._max_batch_weight:
                break
            batch.append(self._pending.popleft())
            weight += pending.weight
        return batch

    async def _dispatch_forever(self) -> None:
        while True:
            batch = self._take_batch() if self._free_workers else []
            if not batch:
                if self._closed and not self._pending and not self._running:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            self._free_workers -= 1
            self._on_batch(len(batch))
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._running.add(task)

    async def _run(self, batch: list[PendingJob[Job]]) -> None:
        loop = asyncio.get_running_loop()
        try:
            outcomes = await loop.run_in_executor(self._executor, self._run_batch, batch)
        except Exception as error:  # The batch function failed as a whole: fail each job.
            outcomes = [error] * len(batch)
        finally:
            self._free_workers += 1
            self._running.discard(asyncio.current_task())  # type: ignore[arg-type]
            self._wake.set()
        for pending, outcome in zip(batch, outcomes, strict=True):
            if pending.future.done():
                continue
            if isinstance(outcome, BaseException):
                pending.future.set_exception(outcome)
            else:
                pending.future.set_result(outcome)
