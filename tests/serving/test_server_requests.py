"""A real `muse serve` process on 127.0.0.1: protocol surface, bad requests, A/B routing, fuzz."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections import Counter

import grpc
import numpy as np
import pytest
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from muse.cli.demo_serving import score_each_variant
from muse.cli.main import main
from serving.exposure_log import read_exposures
from serving.proto_gen.muse.serving.v1 import ranking_pb2, ranking_pb2_grpc
from serving.ranking.client import RankingClient
from serving.server_process import ServerProcess
from tests.serving.conftest import serving_config, write_experiments
from tests.serving.live_server import SCORE_METHOD, metric
from tests.serving.tiny_world import ITEM_IDS, LONG_USER, TinyWorld

CANDIDATES = [int(ITEM_IDS[i]) for i in (3, 50, 120, 260)]
INT64 = st.integers(-(2**63), 2**63 - 1)


@pytest.fixture(scope="module")
def server(world: TinyWorld, tmp_path_factory: pytest.TempPathFactory):
    directory = tmp_path_factory.mktemp("requests_server")
    config = serving_config(world, directory, experiments=write_experiments(directory))
    with ServerProcess.from_config(config, directory) as process:
        yield process


def _status(call) -> tuple[grpc.StatusCode, str]:
    try:
        call()
    except grpc.RpcError as error:
        return error.code(), error.details()
    return grpc.StatusCode.OK, ""


def test_health_reflection_and_a_score(server: ServerProcess) -> None:
    with RankingClient(server.address) as client:
        assert client.serving()
        result = client.score(LONG_USER, CANDIDATES, timeout=60)
    assert len(result.scores) == len(CANDIDATES)
    assert all(0.0 < score < 1.0 for score in result.scores)
    assert result.model_version.startswith(("muse@", "din@"))
    with grpc.insecure_channel(server.address) as channel:
        services = ProtoReflectionDescriptorDatabase(channel).get_services()
    assert "muse.serving.v1.RankingService" in services
    assert "grpc.health.v1.Health" in services


BAD_SCORES = {
    "empty candidates": (ranking_pb2.ScoreRequest(user_id=3), "candidate_item_ids"),
    "too many candidates": (
        ranking_pb2.ScoreRequest(user_id=3, candidate_item_ids=range(2001)),
        "candidate_item_ids",
    ),
    "malformed candidate ids": (b"\x08\x03\x12\x03\x81\x80\x80", "candidate_item_ids"),
    "malformed user id": (b"\x08\xff", "user_id"),
    "oversize message": (
        ranking_pb2.ScoreRequest(user_id=3, candidate_item_ids=[2**62 + i for i in range(150_000)]),
        "candidate_item_ids",
    ),
    "empty model pin": (
        ranking_pb2.ScoreRequest(user_id=3, candidate_item_ids=[1], context={"model": ""}),
        "context['model']",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_SCORES))
def test_bad_score_requests_name_the_field_and_the_server_keeps_serving(
    server: ServerProcess, case: str
) -> None:
    request, field = BAD_SCORES[case]
    payload = request if isinstance(request, bytes) else request.SerializeToString()
    with grpc.insecure_channel(server.address) as channel:
        raw = channel.unary_unary("/muse.serving.v1.RankingService/Score")
        code, details = _status(lambda: raw(payload, timeout=30))
    assert code == grpc.StatusCode.INVALID_ARGUMENT, details
    assert details.startswith(f"{field}:"), details
    with RankingClient(server.address) as client:
        assert len(client.score(LONG_USER, CANDIDATES, timeout=60).scores) == len(CANDIDATES)


def test_bad_appends_and_unknown_models_get_their_status(server: ServerProcess) -> None:
    with grpc.insecure_channel(server.address) as channel:
        stub = ranking_pb2_grpc.RankingServiceStub(channel)
        negative = ranking_pb2.AppendBehaviorsRequest(
            user_id=5,
            behaviors=[
                ranking_pb2.Behavior(item_id=1, timestamp=1),
                ranking_pb2.Behavior(item_id=1, timestamp=-5),
            ],
        )
        code, details = _status(lambda: stub.AppendBehaviors(negative, timeout=30))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith(
            "behaviors[1].timestamp:"
        )
        code, details = _status(
            lambda: stub.AppendBehaviors(ranking_pb2.AppendBehaviorsRequest(user_id=5), timeout=30)
        )
        assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("behaviors:")
        pinned = ranking_pb2.ScoreRequest(
            user_id=5, candidate_item_ids=[1], context={"model": "nope"}
        )
        code, details = _status(lambda: stub.Score(pinned, timeout=30))
        assert code == grpc.StatusCode.NOT_FOUND and "'nope'" in details


def test_unknown_users_get_cold_start_scores(server: ServerProcess) -> None:
    with RankingClient(server.address) as client:
        for user in (10**15, -7, 0):
            result = client.score(user, CANDIDATES + [123_456_789], timeout=60)
            assert len(result.scores) == len(CANDIDATES) + 1
            assert all(np.isfinite(result.scores)) and all(0.0 < s < 1.0 for s in result.scores)


def test_each_variant_is_served_by_its_bundle_and_exposures_are_logged(
    server: ServerProcess, world: TinyWorld
) -> None:
    served: dict[str, set[str]] = {}
    with RankingClient(server.address) as client:
        for user in range(1, 121):
            result = client.score(user, CANDIDATES, timeout=60)
            (assignment,) = result.assignments
            served.setdefault(assignment[2], set()).add(result.model_version.split("@")[0])
            known = user <= world.dataset.num_users
            if (
                assignment[2] == "treatment_k12"
                and known
                and world.dataset.history(user - 1)[0].size > 12
            ):
                k8 = client.score(user, CANDIDATES, context={"model": "muse"}, timeout=60)
                assert k8.assignments == []
                assert not np.allclose(k8.scores, result.scores)  # K=12 override took effect
    assert served == {
        "control": {"din"},
        "treatment": {"muse"},
        "treatment_k12": {"muse"},
        "default": {"muse"},
    }
    exposures = None
    for _ in range(100):
        exposures = read_exposures(server.config_path.parent / "exposures")
        if exposures.height:
            break
        time.sleep(0.1)
    assert exposures is not None and set(exposures["variant"]) >= {
        "control",
        "treatment",
        "treatment_k12",
    }
    assert set(exposures["experiment"]) == {"muse_vs_din"}


def test_one_user_per_variant_and_the_client_command(server: ServerProcess, capsys) -> None:
    experiments = server.config_path.parent / "experiments.toml"
    probes = score_each_variant(server.address, experiments, lambda _: CANDIDATES, timeout=60)
    assert [probe.slot[2] for probe in probes] == [
        "default",
        "control",
        "treatment",
        "treatment_k12",
    ]
    for probe in probes:
        assert probe.result.assignments == [probe.slot]
        assert probe.result.model_version.startswith(
            "din@" if probe.slot[2] == "control" else "muse@"
        )
    user = probes[1].user_id  # in the DIN control
    ids = ",".join(map(str, CANDIDATES))
    assert (
        main(
            [
                "client",
                "--address",
                server.address,
                "--user",
                str(user),
                "--candidates",
                ids,
                "--timeout",
                "60",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "model_version: din@" in printed and "variant=control" in printed
    assert len([line for line in printed.splitlines() if "\t" in line]) == len(CANDIDATES)
    assert (
        main(
            [
                "client",
                "--address",
                server.address,
                "--user",
                "1",
                "--candidates",
                ",",
                "--timeout",
                "60",
            ]
        )
        == 1
    )
    assert "INVALID_ARGUMENT: candidate_item_ids" in capsys.readouterr().err


def _arithmetic_ids(count: int, start: int) -> list[int]:
    return [(start + 7919 * i) % 2**63 for i in range(count)]


_candidate_lists = st.one_of(
    st.lists(INT64, max_size=6),
    st.lists(st.sampled_from([int(i) for i in ITEM_IDS[:40]]), min_size=1, max_size=8),
    st.builds(_arithmetic_ids, st.sampled_from([0, 20, 2001, 2600]), INT64),
)
_contexts = st.sampled_from(
    [
        {},
        {"model": "muse"},
        {"model": "din"},
        {"model": ""},
        {"model": "nope"},
        {"page": "home", "": ""},
    ]
)
_score_messages = st.builds(
    lambda user, candidates, context: ranking_pb2.ScoreRequest(
        user_id=user, candidate_item_ids=candidates, context=context
    ).SerializeToString(),
    INT64,
    _candidate_lists,
    _contexts,
)


def _mutate(data: bytes, position: int, value: int, cut: int) -> bytes:
    if not data:
        return bytes([value])
    flipped = bytearray(data)
    flipped[position % len(flipped)] = value
    return bytes(flipped[: max(1, len(flipped) - cut)])


_payloads = st.one_of(
    _score_messages,
    st.builds(
        _mutate, _score_messages, st.integers(0, 10_000), st.integers(0, 255), st.integers(0, 3)
    ),
    st.binary(max_size=32),
)
ALLOWED = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND}


class BackgroundSender:
    """Sends raw Score payloads from a background event loop, so that hypothesis can generate
    the next batch while the server answers this one; at most ``concurrency`` calls in flight."""

    def __init__(self, address: str, concurrency: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.address = address
        self.concurrency = concurrency
        self.pending: list[concurrent.futures.Future] = []
        self.channel = asyncio.run_coroutine_threadsafe(self._open(), self.loop).result()

    async def _open(self) -> grpc.aio.Channel:
        self.limit = asyncio.Semaphore(self.concurrency)
        return grpc.aio.insecure_channel(self.address)

    async def _send(self, payload: bytes) -> tuple[bytes, grpc.StatusCode, str]:
        async with self.limit:
            try:
                await self.channel.unary_unary(SCORE_METHOD)(payload, timeout=60)
                return payload, grpc.StatusCode.OK, ""
            except grpc.aio.AioRpcError as error:
                return payload, error.code(), error.details() or ""

    def submit(self, payloads: list[bytes]) -> None:
        for payload in payloads:
            self.pending.append(asyncio.run_coroutine_threadsafe(self._send(payload), self.loop))

    def results(self) -> list[tuple[bytes, grpc.StatusCode, str]]:
        outcomes = [future.result(timeout=300) for future in self.pending]
        asyncio.run_coroutine_threadsafe(self.channel.close(), self.loop).result()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        return outcomes


def test_fuzz_ten_thousand_random_requests(server: ServerProcess) -> None:
    sender = BackgroundSender(server.address, concurrency=32)

    @settings(
        max_examples=100,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(batch=st.lists(_payloads, min_size=100, max_size=100))
    def generate(batch: list[bytes]) -> None:
        sender.submit(batch)

    generate()
    results = sender.results()
    codes = Counter(code for _, code, _ in results)
    unexpected = [
        (code, details, payload[:64]) for payload, code, details in results if code not in ALLOWED
    ]
    assert unexpected == []
    unnamed = [
        details for _, code, details in results if code != grpc.StatusCode.OK and ":" not in details
    ]
    assert unnamed == []  # every refusal names the field (or the context key) at fault
    assert len(results) >= 10_000
    assert codes[grpc.StatusCode.OK] > 1000 and codes[grpc.StatusCode.INVALID_ARGUMENT] > 1000
    assert metric(server.metrics_port, "muse_requests_total", {"status": "INTERNAL"}) == 0
    with RankingClient(server.address) as client:
        assert client.serving()
