"""A small blocking client of the ranking service, for scripts, the CLI, the demo and tests."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from serving.proto_gen.muse.serving.v1 import ranking_pb2, ranking_pb2_grpc


class ScoreResult(NamedTuple):
    """One score per candidate (request order), the model version and the user's assignments."""

    scores: list[float]
    model_version: str
    assignments: list[tuple[str, str, str]]


class RankingClient:
    """Blocking client over one channel; use as a context manager or call :meth:`close`."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._channel = grpc.insecure_channel(address)
        self._ranking = ranking_pb2_grpc.RankingServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    def score(
        self,
        user_id: int,
        candidate_item_ids: Sequence[int],
        context: dict[str, str] | None = None,
        timeout: float | None = 10.0,
    ) -> ScoreResult:
        """Score candidates for a user; raises grpc.RpcError with the server's status on failure."""
        response = self._ranking.Score(
            ranking_pb2.ScoreRequest(
                user_id=user_id, candidate_item_ids=list(candidate_item_ids), context=context or {}
            ),
            timeout=timeout,
        )
        return ScoreResult(
            scores=list(response.scores),
            model_version=response.model_version,
            assignments=[(a.layer, a.experiment, a.variant) for a in response.assignments],
        )

    def append(
        self,
        user_id: int,
        behaviours: Iterable[tuple[int, int] | tuple[int, int, int]],
        timeout: float | None = 10.0,
    ) -> tuple[int, int]:
        """Append (item_id, timestamp[, category_id]) events; returns (accepted, history_version)."""
        events = []
        for behaviour in behaviours:
            event = ranking_pb2.Behavior(item_id=behaviour[0], timestamp=behaviour[1])
            if len(behaviour) > 2:
                event.category_id = behaviour[2]
            events.append(event)
        response = self._ranking.AppendBehaviors(
            ranking_pb2.AppendBehaviorsRequest(user_id=user_id, behaviors=events), timeout=timeout
        )
        return response.accepted, response.history_version

    def serving(self, timeout: float | None = 5.0) -> bool:
        """True when the server's health check answers SERVING."""
        try:
            response = self._health.Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout
            )
        except grpc.RpcError:
            return False
        return response.status == health_pb2.HealthCheckResponse.SERVING

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> RankingClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
