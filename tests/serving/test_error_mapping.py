"""Every error becomes its status code in one place; unexpected ones are INTERNAL and logged."""

from __future__ import annotations

import asyncio
import logging

import grpc
import pytest

from serving.error_interceptor import ErrorMappingInterceptor, status_for
from serving.errors import (
    DeadlineExpired,
    InvalidArgument,
    ModelNotFound,
    NotReady,
    Overloaded,
    VariantUnavailable,
)
from serving.metrics import ServingMetrics
from serving.proto_gen.muse.serving.v1 import ranking_pb2, ranking_pb2_grpc


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (
            InvalidArgument("candidate_item_ids", "must not be empty"),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (ModelNotFound("no bundle 'x'"), grpc.StatusCode.NOT_FOUND),
        (VariantUnavailable("variant down"), grpc.StatusCode.FAILED_PRECONDITION),
        (Overloaded("full"), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (NotReady("starting"), grpc.StatusCode.UNAVAILABLE),
        (DeadlineExpired("late"), grpc.StatusCode.DEADLINE_EXCEEDED),
        (KeyError("secret"), grpc.StatusCode.INTERNAL),
    ],
)
def test_status_for_each_error(error: Exception, code: grpc.StatusCode) -> None:
    got, message = status_for(error)
    assert got == code
    assert message == ("internal error" if code == grpc.StatusCode.INTERNAL else str(error))


class RaisingServicer(ranking_pb2_grpc.RankingServiceServicer):
    """Raises the error chosen by the request's user id."""

    ERRORS = {
        1: InvalidArgument("context", "bad"),
        2: RuntimeError("secret detail"),
        3: NotReady("starting"),
    }

    async def Score(self, request, context):  # noqa: N802
        if request.user_id in self.ERRORS:
            raise self.ERRORS[request.user_id]
        return ranking_pb2.ScoreResponse(scores=[0.5], model_version="m")


def test_interceptor_maps_errors_logs_internal_ones_and_counts_statuses(caplog) -> None:
    metrics = ServingMetrics()

    async def scenario():
        server = grpc.aio.server(
            interceptors=[ErrorMappingInterceptor(metrics, max_message_bytes=1024)]
        )
        ranking_pb2_grpc.add_RankingServiceServicer_to_server(RaisingServicer(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        outcomes = []
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = ranking_pb2_grpc.RankingServiceStub(channel)
            for user in (0, 1, 2, 3):
                try:
                    await stub.Score(ranking_pb2.ScoreRequest(user_id=user), timeout=10)
                    outcomes.append((grpc.StatusCode.OK, ""))
                except grpc.aio.AioRpcError as error:
                    outcomes.append((error.code(), error.details()))
            big = ranking_pb2.ScoreRequest(user_id=0, candidate_item_ids=list(range(1000)))
            try:
                await stub.Score(big, timeout=10)
            except grpc.aio.AioRpcError as error:
                outcomes.append((error.code(), error.details()))
        await server.stop(0)
        return outcomes

    with caplog.at_level(logging.ERROR, logger="muse.serving"):
        outcomes = asyncio.run(scenario())
    codes = [code for code, _ in outcomes]
    assert codes == [
        grpc.StatusCode.OK,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.INVALID_ARGUMENT,
    ]
    assert outcomes[1][1] == "context: bad"
    assert outcomes[2][1].startswith("internal error (incident ") and "secret" not in outcomes[2][1]
    assert outcomes[4][1].startswith("candidate_item_ids: request is ")
    (record,) = [r for r in caplog.records if r.getMessage() == "unexpected error"]
    assert record.exc_info is not None and "secret detail" in str(record.exc_info[1])
    assert record.incident in outcomes[2][1]
    labels = {"service": "muse.serving.v1.RankingService", "method": "Score", "variant": "none"}
    assert metrics.value("muse_requests_total", {**labels, "status": "INTERNAL"}) == 1
    assert metrics.value("muse_requests_total", {**labels, "status": "INVALID_ARGUMENT"}) == 2
