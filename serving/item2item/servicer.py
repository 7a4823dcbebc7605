"""The SimilarItems gRPC servicer: protos in, engine call, protos out. No logic here."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc

from muse.item2item.export.new_item_inputs import NewItem
from serving.admission import Admission
from serving.deadline import deadline_of
from serving.item2item.requests import SimilarQuery
from serving.proto_gen.muse.serving.v1 import similar_items_pb2, similar_items_pb2_grpc

if TYPE_CHECKING:
    from serving.item2item.engine import SimilarItemsEngine


class SimilarItemsServicer(similar_items_pb2_grpc.SimilarItemsServiceServicer):
    """Implements muse.serving.v1.SimilarItemsService on top of a :class:`SimilarItemsEngine`."""

    def __init__(self, engine: SimilarItemsEngine, admission: Admission) -> None:
        self._engine = engine
        self._admission = admission

    async def SimilarItems(  # noqa: N802 (gRPC method name)
        self, request: similar_items_pb2.SimilarItemsRequest, context: grpc.aio.ServicerContext
    ) -> similar_items_pb2.SimilarItemsResponse:
        with self._admission.admit():
            query = SimilarQuery(
                item_id=request.item_id,
                k=request.k,
                category=request.category,
                user_id=request.user_id,
                context=dict(request.context),
                item=_new_item(request.item) if request.WhichOneof("query") == "item" else None,
            )
            answer = await self._engine.similar(query, deadline_of(context))
        return similar_items_pb2.SimilarItemsResponse(
            item_ids=answer.item_ids.tolist(),
            scores=answer.scores.tolist(),
            index_version=answer.index_version,
            assignments=[
                similar_items_pb2.SimilarItemsAssignment(
                    layer=a.layer, experiment=a.experiment, variant=a.variant
                )
                for a in answer.assignments
            ],
        )


def _new_item(item: similar_items_pb2.NewItem) -> NewItem:
    return NewItem(
        title=item.title,
        content=item.content,
        topics=tuple(item.topics),
        category=item.category,
        image=item.image,
    )
