"""The Converse gRPC servicer: protos in, engine call, protos out. No logic here."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc

from features.dialogues import Turn
from serving.admission import Admission
from serving.conversational.requests import ConverseQuery
from serving.deadline import deadline_of
from serving.proto_gen.muse.serving.v1 import conversational_pb2, conversational_pb2_grpc

if TYPE_CHECKING:
    from serving.conversational.engine import ConversationalEngine


class ConversationalServicer(conversational_pb2_grpc.ConversationalServiceServicer):
    """Implements muse.serving.v1.ConversationalService on top of a ConversationalEngine."""

    def __init__(self, engine: ConversationalEngine, admission: Admission) -> None:
        self._engine = engine
        self._admission = admission

    async def Converse(  # noqa: N802 (gRPC method name)
        self, request: conversational_pb2.ConverseRequest, context: grpc.aio.ServicerContext
    ) -> conversational_pb2.ConverseResponse:
        with self._admission.admit():
            query = ConverseQuery(
                session_id=request.session_id,
                text=request.text,
                image=request.image,
                image_item_id=request.image_item_id,
                k=request.k,
                user_id=request.user_id,
                dialogue=(
                    tuple(_turn(t) for t in request.dialogue)
                    if request.dialogue or request.stateless
                    else None
                ),
                context=dict(request.context),
            )
            answer = await self._engine.converse(query, deadline_of(context))
        items = answer.items
        return conversational_pb2.ConverseResponse(
            items=[
                conversational_pb2.RecommendedItem(
                    item_id=item_id, score=score, log_prob=log_prob, cosine=cosine, title=title
                )
                for item_id, score, log_prob, cosine, title in zip(
                    items.item_ids.tolist(),
                    items.scores.tolist(),
                    items.log_probs.tolist(),
                    items.cosines.tolist(),
                    items.titles,
                    strict=True,
                )
            ],
            rewritten_query=answer.rewritten_query,
            query_image_item_id=answer.query_image_item_id,
            model_version=answer.model_version,
            assignments=[
                conversational_pb2.ConverseAssignment(
                    layer=a.layer, experiment=a.experiment, variant=a.variant
                )
                for a in answer.assignments
            ],
            beams=answer.beams,
            alpha=answer.alpha,
            session_turns=answer.session_turns,
        )


def _turn(turn: conversational_pb2.DialogueTurn) -> Turn:
    return Turn(
        role=turn.role,
        text=turn.text,
        image_item_id=turn.image_item_id or None,
        image=turn.image or None,
        rewrite=None,
        rewrite_image_item_id=None,
    )
