"""One MuseServer hosts several services: shared health, reflection, admission, metrics and drain.

The second service is a tiny echo service registered through grpc's generic handlers, over an
engine whose answers wait for the test to release them, so a drain can be watched mid-request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from serving.admission import Admission
from serving.hosted_service import HostedService, ServiceFactory
from serving.metrics import ServingMetrics
from serving.proto_gen.muse.serving.v1 import ranking_pb2, ranking_pb2_grpc
from serving.ranking.service import SERVICE_NAME as RANKING_SERVICE
from serving.ranking.service import ranking_service
from serving.server import MuseServer
from serving.serving_config import ServingConfig
from tests.serving.conftest import serving_config
from tests.serving.tiny_world import ITEM_IDS, LONG_USER, TinyWorld

ECHO_SERVICE = "muse.test.v1.EchoService"
ECHO_METHOD = f"/{ECHO_SERVICE}/Echo"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class EchoEngine:
    """Answers with the request bytes once :attr:`gate` opens; records its lifecycle."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.gate: asyncio.Event | None = None

    def load(self) -> None:
        self.events.append("load")

    def start(self) -> None:
        self.gate = asyncio.Event()
        self.events.append("start")

    async def echo(self, payload: bytes) -> bytes:
        assert self.gate is not None
        await self.gate.wait()
        return payload

    async def close(self) -> None:
        self.events.append("close")


def echo_service(engine: EchoEngine) -> ServiceFactory:
    """A factory like :func:`ranking_service`: a raw-bytes servicer over ``engine``."""

    def make(config: ServingConfig, metrics: ServingMetrics, admission: Admission) -> HostedService:
        async def echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            with admission.admit():
                return await engine.echo(request)

        handler = grpc.method_handlers_generic_handler(
            ECHO_SERVICE, {"Echo": grpc.unary_unary_rpc_method_handler(echo)}
        )
        return HostedService(
            ECHO_SERVICE, lambda server: server.add_generic_rpc_handlers((handler,)), engine
        )

    return make


async def _health(server: MuseServer, service: str) -> int:
    response = await server.health.Check(health_pb2.HealthCheckRequest(service=service), None)
    return response.status


async def _until(condition: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def test_two_services_share_one_server_and_drain_together(world: TinyWorld, tmp_path: Path) -> None:
    echo_engine = EchoEngine()
    candidates = [int(ITEM_IDS[i]) for i in (3, 50, 120)]

    async def scenario():
        services = [ranking_service, echo_service(echo_engine)]
        server = MuseServer(serving_config(world, tmp_path), services)
        await server.start()
        async with grpc.aio.insecure_channel(server.address) as channel:
            health_stub = health_pb2_grpc.HealthStub(channel)
            statuses = {
                name: (await health_stub.Check(health_pb2.HealthCheckRequest(service=name))).status
                for name in ("", RANKING_SERVICE, ECHO_SERVICE)
            }
            services = await asyncio.to_thread(
                lambda: ProtoReflectionDescriptorDatabase(
                    grpc.insecure_channel(server.address)
                ).get_services()
            )
            ranking = ranking_pb2_grpc.RankingServiceStub(channel)
            score = await ranking.Score(
                ranking_pb2.ScoreRequest(user_id=LONG_USER, candidate_item_ids=candidates),
                timeout=60,
            )
            echo = channel.unary_unary(ECHO_METHOD)
            in_flight = asyncio.ensure_future(echo(b"ping", timeout=60))

            async def echo_admitted() -> bool:
                return server.admission.in_flight == 1

            async def both_not_serving() -> bool:
                services = (RANKING_SERVICE, ECHO_SERVICE)
                return {await _health(server, name) for name in services} == {NOT_SERVING}

            await _until(echo_admitted)
            gauge = server.metrics.value("muse_requests_in_flight")
            stopping = asyncio.ensure_future(server.stop(grace=30))
            await _until(both_not_serving)
            closed_before_answer = "close" in echo_engine.events
            assert echo_engine.gate is not None
            echo_engine.gate.set()
            answer = await in_flight
            await stopping
        return statuses, services, score, gauge, closed_before_answer, answer, server

    statuses, services, score, gauge, closed_before_answer, answer, server = asyncio.run(scenario())
    assert statuses == {"": SERVING, RANKING_SERVICE: SERVING, ECHO_SERVICE: SERVING}
    assert {RANKING_SERVICE, ECHO_SERVICE, "grpc.health.v1.Health"} <= set(services)
    assert len(score.scores) == len(candidates)
    # One admission limit and one registry for both services.
    assert gauge == 1
    for service, method in ((RANKING_SERVICE, "Score"), (ECHO_SERVICE, "Echo")):
        labels = {"service": service, "method": method, "status": "OK", "variant": "none"}
        if service == RANKING_SERVICE:
            labels["variant"] = "default"
        assert server.metrics.value("muse_requests_total", labels) == 1
    # The in-flight echo finished during the drain, and only then were the engines closed.
    assert answer == b"ping" and not closed_before_answer
    assert echo_engine.events == ["load", "start", "close"]
    assert server.services[0].engine.ready is False
