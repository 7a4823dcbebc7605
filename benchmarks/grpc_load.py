"""The bounded gRPC load client the serving benchmarks share, and how they report what it measured.

A fixed number of requests (cycling a list) is sent by ``concurrency`` closed-loop workers on one
grpc.aio channel, within a time limit, after an optional warm-up on the same channel. Latencies
are wall seconds of successful calls; beside them the CPU seconds the server process (from
/proc) and this client used during the measured part, which other jobs on a shared machine move
far less than wall time.

    from benchmarks.grpc_load import measured
    result = measured("c=8", "ours", server.pid, server.address,
                      lambda channel: ServiceStub(channel).Method, requests, 8, 2000, 60.0)
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# channel → the bound unary method to call, e.g. ``lambda channel: Stub(channel).Score``.
CallFactory = Callable[[Any], Callable[..., Awaitable[Any]]]


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class LoadResult:
    """What one bounded load run measured (latencies in seconds, successful requests only).

    server_cpu / client_cpu: CPU seconds the server process and the load client used during the
    measured part; CPU per request is robust to other jobs on the machine, unlike wall time.
    """

    name: str
    path: str
    concurrency: int
    requests: int
    errors: int
    wall_seconds: float
    latencies: list[float]
    server_cpu: float = 0.0
    client_cpu: float = 0.0

    def cpu_ms_per_request(self) -> float:
        count = len(self.latencies)
        return (self.server_cpu + self.client_cpu) / count * 1e3 if count else float("nan")

    def server_cpu_ms_per_request(self) -> float:
        count = len(self.latencies)
        return self.server_cpu / count * 1e3 if count else float("nan")

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.wall_seconds if self.wall_seconds else 0.0

    def percentile(self, q: float) -> float:
        """The q-th percentile latency in milliseconds (NaN without successes)."""
        return float(np.percentile(self.latencies, q)) * 1e3 if self.latencies else float("nan")


async def load(
    address: str,
    call: CallFactory,
    requests: Sequence[Any],
    concurrency: int,
    max_requests: int,
    max_seconds: float,
    warmup: Sequence[Any] | None = None,
    *,
    warmup_concurrency: int = 1,
    after_warmup: Callable[[], None] | None = None,
    responses: list[tuple[int, Any]] | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[int, int, float, list[float]]:
    """Send up to ``max_requests`` (cycling ``requests``) within ``max_seconds`` with ``concurrency``
    workers on one channel; returns (sent, errors, wall seconds, latencies of successes).

    warmup: requests sent first on the same channel (``warmup_concurrency`` at a time), not
    measured; ``after_warmup`` runs once they are answered (to read CPU counters). responses:
    when given, gets (position in ``requests``, reply) of every success. progress: told 1 per
    answered request.
    """
    import grpc

    async with grpc.aio.insecure_channel(address) as channel:
        method = call(channel)
        if warmup:
            queue = iter(warmup)

            async def warm() -> None:
                for request in queue:  # the workers share one iterator: each request once
                    await method(request, timeout=600)

            await asyncio.gather(*(warm() for _ in range(max(1, warmup_concurrency))))
        if after_warmup is not None:
            after_warmup()
        latencies: list[float] = []
        counter = {"next": 0, "errors": 0}
        stop_at = time.perf_counter() + max_seconds

        async def worker() -> None:
            while counter["next"] < max_requests and time.perf_counter() < stop_at:
                position = counter["next"] % len(requests)
                counter["next"] += 1
                started = time.perf_counter()
                try:
                    reply = await method(requests[position], timeout=600)
                    latencies.append(time.perf_counter() - started)
                    if responses is not None:
                        responses.append((position, reply))
                except grpc.aio.AioRpcError:
                    counter["errors"] += 1
                if progress is not None:
                    progress(1)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return counter["next"], counter["errors"], time.perf_counter() - started, latencies


def measured(
    name: str,
    path: str,
    server_pid: int,
    address: str,
    call: CallFactory,
    requests: Sequence[Any],
    concurrency: int,
    max_requests: int,
    max_seconds: float,
    warmup: Sequence[Any] | None = None,
    *,
    warmup_concurrency: int = 1,
    responses: list[tuple[int, Any]] | None = None,
    progress: Callable[[int], None] | None = None,
    quiet: bool = False,
) -> LoadResult:
    """One bounded load run with the CPU both sides used (warm-up excluded); prints its line
    unless ``quiet``."""
    before: dict[str, float] = {}

    def snapshot() -> None:
        before.update(server=process_cpu_seconds(server_pid), client=time.process_time())

    sent, errors, wall, latencies = asyncio.run(
        load(
            address,
            call,
            requests,
            concurrency,
            max_requests,
            max_seconds,
            warmup,
            warmup_concurrency=warmup_concurrency,
            after_warmup=snapshot,
            responses=responses,
            progress=progress,
        )
    )
    result = LoadResult(
        name,
        path,
        concurrency,
        sent,
        errors,
        wall,
        latencies,
        server_cpu=process_cpu_seconds(server_pid) - before["server"],
        client_cpu=time.process_time() - before["client"],
    )
    if not quiet:
        print(summary_line(result), flush=True)
    return result


def summary_line(result: LoadResult) -> str:
    """One console line: requests, RPS, p50/p99 and CPU per request of a load run."""
    return (
        f"{result.path:>5} | {result.name:<48} | {len(result.latencies):>5} ok {result.errors:>3} err | "
        f"{result.rps:8.1f} RPS | p50 {result.percentile(50):8.1f} ms | p99 {result.percentile(99):8.1f} ms | "
        f"CPU {result.cpu_ms_per_request():6.1f} ms/request"
    )
