"""Helpers for tests against a real `muse serve` process: raw calls, metrics, memory."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import Sequence

import grpc
from prometheus_client.parser import text_string_to_metric_families

from serving.proto_gen.muse.serving.v1 import ranking_pb2, ranking_pb2_grpc

SCORE_METHOD = "/muse.serving.v1.RankingService/Score"


def metric(port: int, name: str, labels: dict[str, str] | None = None) -> float:
    """Sum of the samples called ``name`` whose labels include ``labels``, from /metrics."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(
                sample.labels.get(k) == v for k, v in (labels or {}).items()
            ):
                total += sample.value
    return total


def resident_bytes(pid: int) -> int:
    """VmRSS of a process, in bytes."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


async def score_many(
    address: str,
    requests: Sequence[ranking_pb2.ScoreRequest | bytes],
    concurrency: int,
    timeout: float | None = 30.0,
) -> list[tuple[grpc.StatusCode, str, ranking_pb2.ScoreResponse | None, float]]:
    """Send every request (a message, or raw bytes sent as-is) with bounded concurrency.

    Returns (status code, details, response or None, seconds) per request, in order.
    """
    limit = asyncio.Semaphore(concurrency)
    async with grpc.aio.insecure_channel(address) as channel:
        stub = ranking_pb2_grpc.RankingServiceStub(channel)
        raw = channel.unary_unary(SCORE_METHOD)

        async def one(request):
            async with limit:
                started = time.perf_counter()
                try:
                    if isinstance(request, bytes):
                        reply = ranking_pb2.ScoreResponse.FromString(
                            await raw(request, timeout=timeout)
                        )
                    else:
                        reply = await stub.Score(request, timeout=timeout)
                    return grpc.StatusCode.OK, "", reply, time.perf_counter() - started
                except grpc.aio.AioRpcError as error:
                    return error.code(), error.details() or "", None, time.perf_counter() - started

        return await asyncio.gather(*(one(request) for request in requests))
