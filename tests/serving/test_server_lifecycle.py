"""A real `muse serve` process under stress: deadlines, overload, SIGTERM drain, kill -9 durability.

Slow requests come from a user whose history is grown to 50,000 behaviours through
AppendBehaviors and who is scored against 2,000 candidates; budgets derive from the measured
latency of one such request, so the tests hold on a fast or a busy machine.
"""

from __future__ import annotations

import asyncio
import math
import signal
import time
from pathlib import Path

import grpc
import numpy as np
import pytest

from serving.proto_gen.muse.serving.v1 import ranking_pb2
from serving.ranking.client import RankingClient
from serving.server_process import ServerProcess
from serving.serving_config import LimitsConfig
from tests.serving.conftest import serving_config
from tests.serving.live_server import metric, resident_bytes, score_many
from tests.serving.tiny_world import ITEM_IDS, TinyWorld

HEAVY_USER = 10**12
HEAVY_CANDIDATES = [int(ITEM_IDS[i % len(ITEM_IDS)]) for i in range(2000)]
MAX_IN_FLIGHT = 16


def _heavy_request() -> ranking_pb2.ScoreRequest:
    return ranking_pb2.ScoreRequest(
        user_id=HEAVY_USER, candidate_item_ids=HEAVY_CANDIDATES, context={"model": "muse"}
    )


def _grow_history(client: RankingClient, user: int, events: int, seed: int = 0) -> int:
    """Append ``events`` random known items to ``user`` (10,000 per call); returns the version."""
    rng = np.random.default_rng(seed)
    version = 0
    for start in range(0, events, 10_000):
        items = rng.choice(ITEM_IDS, size=min(10_000, events - start))
        _, version = client.append(
            user, [(int(item), 1_000 + start + i) for i, item in enumerate(items)], timeout=120
        )
    return version


def _heavy_latency(address: str) -> float:
    """Seconds for one heavy request on an idle server (after a warm-up call)."""
    with RankingClient(address) as client:
        client.score(HEAVY_USER, HEAVY_CANDIDATES, {"model": "muse"}, timeout=120)
        started = time.perf_counter()
        client.score(HEAVY_USER, HEAVY_CANDIDATES, {"model": "muse"}, timeout=120)
        return time.perf_counter() - started


@pytest.fixture(scope="module")
def busy_server(world: TinyWorld, tmp_path_factory: pytest.TempPathFactory):
    directory = tmp_path_factory.mktemp("busy_server")
    config = serving_config(world, directory, limits=LimitsConfig(max_in_flight=MAX_IN_FLIGHT))
    with ServerProcess.from_config(config, directory) as process:
        with RankingClient(process.address) as client:
            _grow_history(client, HEAVY_USER, 50_000)
        yield process


def test_expired_requests_are_dropped_before_their_work(busy_server: ServerProcess) -> None:
    latency = _heavy_latency(busy_server.address)
    port = busy_server.metrics_port
    scored_before = metric(port, "muse_requests_scored_total")
    skipped_before = metric(port, "muse_requests_skipped_total")

    async def scenario():
        backlog = asyncio.ensure_future(
            score_many(busy_server.address, [_heavy_request()] * 8, concurrency=8, timeout=120)
        )
        await asyncio.sleep(min(0.05, latency / 4))
        # Queued behind 8 heavy requests (≈ 8 × latency of work), these expire while waiting.
        short = await score_many(
            busy_server.address, [_heavy_request()] * 6, concurrency=6, timeout=max(0.05, latency)
        )
        return await backlog, short

    backlog, short = asyncio.run(scenario())
    assert [code for code, *_ in backlog] == [grpc.StatusCode.OK] * 8
    assert [code for code, *_ in short] == [grpc.StatusCode.DEADLINE_EXCEEDED] * 6
    time.sleep(0.2)
    scored = metric(port, "muse_requests_scored_total") - scored_before
    skipped = metric(port, "muse_requests_skipped_total") - skipped_before
    assert skipped >= 1  # work was dropped, not done and thrown away
    assert scored >= 8 and scored + skipped <= 14
    assert scored < 14  # not every expired request had its work done


def test_overload_at_four_times_capacity_is_refused_fast_with_bounded_memory(
    busy_server: ServerProcess,
) -> None:
    address, pid = busy_server.address, busy_server.pid
    asyncio.run(
        score_many(
            address, [_heavy_request()] * MAX_IN_FLIGHT, concurrency=MAX_IN_FLIGHT, timeout=120
        )
    )
    baseline = resident_bytes(pid)

    wave = [_heavy_request()] * (4 * MAX_IN_FLIGHT)
    results = asyncio.run(score_many(address, wave, concurrency=len(wave), timeout=120))
    outcomes = [(code, seconds) for code, _, _, seconds in results]
    codes = {code for code, _ in outcomes}
    assert codes == {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}
    refused = [seconds for code, seconds in outcomes if code == grpc.StatusCode.RESOURCE_EXHAUSTED]
    served = [seconds for code, seconds in outcomes if code == grpc.StatusCode.OK]
    assert len(refused) >= 2 * MAX_IN_FLIGHT  # the excess is refused, not queued
    assert np.median(refused) < np.median(served)
    assert np.median(refused) < 1.0
    assert resident_bytes(pid) - baseline < 150 * 2**20


def test_sigterm_drains_in_flight_requests_within_the_grace_period(
    world: TinyWorld, tmp_path: Path
) -> None:
    grace = 30.0
    process = ServerProcess.from_config(
        serving_config(world, tmp_path, drain_grace_seconds=grace), tmp_path
    )
    with process:
        with RankingClient(process.address) as client:
            _grow_history(client, HEAVY_USER, 50_000)
        latency = _heavy_latency(process.address)
        in_flight = max(6, min(24, math.ceil(1.0 / latency)))

        async def scenario():
            backlog = asyncio.ensure_future(
                score_many(
                    process.address,
                    [_heavy_request()] * in_flight,
                    concurrency=in_flight,
                    timeout=120,
                )
            )
            # SIGTERM once every request is admitted (in flight) or already answered.
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                admitted = metric(process.metrics_port, "muse_requests_in_flight")
                answered = metric(process.metrics_port, "muse_requests_total", {"method": "Score"})
                if admitted + answered >= in_flight + 2:  # + the two latency probes
                    break
                await asyncio.sleep(0.005)
            process.process.send_signal(signal.SIGTERM)
            stopped_at = time.perf_counter()
            await asyncio.sleep(0.1)
            late = await score_many(process.address, [_heavy_request()], concurrency=1, timeout=10)
            return await backlog, late, stopped_at

        backlog, late, stopped_at = asyncio.run(scenario())
        exit_code = process.wait(grace + 30)
        drained_in = time.perf_counter() - stopped_at
    assert [code for code, *_ in backlog] == [grpc.StatusCode.OK] * in_flight
    assert all(len(reply.scores) == 2000 for _, _, reply, _ in backlog)
    assert late[0][0] == grpc.StatusCode.UNAVAILABLE
    assert exit_code == 0
    assert drained_in < grace
    assert '"message": "draining"' in process.log_tail(200)


def test_acknowledged_appends_survive_kill_9(world: TinyWorld, tmp_path: Path) -> None:
    user, candidates = 777_777, [int(ITEM_IDS[i]) for i in (1, 60, 150, 299)]
    config = serving_config(world, tmp_path)
    first = ServerProcess.from_config(config, tmp_path / "first").start()
    try:
        with RankingClient(first.address) as client:
            cold = client.score(user, candidates, timeout=60).scores
            accepted, version = client.append(
                user, [(int(ITEM_IDS[i]), 100 + i) for i in range(40, 70)], timeout=60
            )
            warm = client.score(user, candidates, timeout=60).scores
    finally:
        assert first.kill() == -signal.SIGKILL
    assert accepted == 30 and version == 30
    assert not np.allclose(cold, warm)
    second = ServerProcess.from_config(config, tmp_path / "second")
    with second, RankingClient(second.address) as client:
        assert client.score(user, candidates, timeout=60).scores == warm
        assert client.append(user, [(int(ITEM_IDS[5]), 500)], timeout=60) == (1, 31)
