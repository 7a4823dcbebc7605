"""The gRPC servicer: protos in, engine call, protos out. No logic and no error handling here.

Errors raised by the engine (or by admission) propagate to :mod:`serving.error_interceptor`,
which maps them to status codes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc
import numpy as np

from serving.admission import Admission
from serving.deadline import deadline_of
from serving.metrics import variant_label
from serving.proto_gen.muse.serving.v1 import ranking_pb2, ranking_pb2_grpc
from serving.ranking.requests import AppendQuery, ScoreQuery

if TYPE_CHECKING:
    from serving.ranking.engine import RankingEngine


class RankingServicer(ranking_pb2_grpc.RankingServiceServicer):
    """Implements muse.serving.v1.RankingService on top of a :class:`RankingEngine`."""

    def __init__(self, engine: RankingEngine, admission: Admission) -> None:
        self._engine = engine
        self._admission = admission

    async def Score(  # noqa: N802 (gRPC method name)
        self, request: ranking_pb2.ScoreRequest, context: grpc.aio.ServicerContext
    ) -> ranking_pb2.ScoreResponse:
        with self._admission.admit():
            query = ScoreQuery(
                user_id=request.user_id,
                candidate_item_ids=np.array(request.candidate_item_ids, dtype=np.int64),
                context=dict(request.context),
            )
            answer = await self._engine.score(query, deadline_of(context))
        variant_label.set(answer.variant)
        return ranking_pb2.ScoreResponse(
            scores=answer.scores.tolist(),
            model_version=answer.model_version,
            assignments=[
                ranking_pb2.Assignment(layer=a.layer, experiment=a.experiment, variant=a.variant)
                for a in answer.assignments
            ],
        )

    async def AppendBehaviors(  # noqa: N802 (gRPC method name)
        self, request: ranking_pb2.AppendBehaviorsRequest, context: grpc.aio.ServicerContext
    ) -> ranking_pb2.AppendBehaviorsResponse:
        with self._admission.admit():
            behaviours = request.behaviors
            query = AppendQuery(
                user_id=request.user_id,
                item_ids=np.array([b.item_id for b in behaviours], dtype=np.int64),
                category_ids=np.array([b.category_id for b in behaviours], dtype=np.int64),
                category_given=np.array(
                    [b.HasField("category_id") for b in behaviours], dtype=bool
                ),
                timestamps=np.array([b.timestamp for b in behaviours], dtype=np.int64),
            )
            answer = await self._engine.append(query)
        return ranking_pb2.AppendBehaviorsResponse(
            accepted=answer.accepted, history_version=answer.history_version
        )
