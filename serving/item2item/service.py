"""The similar-items service on the shared host: SimilarItemsService over a SimilarItemsEngine."""

from __future__ import annotations

import grpc

from serving.admission import Admission
from serving.hosted_service import HostedService
from serving.item2item.engine import SimilarItemsEngine
from serving.item2item.servicer import SimilarItemsServicer
from serving.metrics import ServingMetrics
from serving.proto_gen.muse.serving.v1 import similar_items_pb2, similar_items_pb2_grpc
from serving.serving_config import ServingConfig

SERVICE_NAME = similar_items_pb2.DESCRIPTOR.services_by_name["SimilarItemsService"].full_name


def similar_items_service(
    config: ServingConfig, metrics: ServingMetrics, admission: Admission
) -> HostedService:
    """The similar-items engine and its servicer; needs ``config.similar_items``."""
    if config.similar_items is None:
        raise ValueError("the similar-items service needs a [similar_items] table in the config")
    engine = SimilarItemsEngine(config.similar_items, metrics)
    servicer = SimilarItemsServicer(engine, admission)

    def add_to_server(server: grpc.aio.Server) -> None:
        similar_items_pb2_grpc.add_SimilarItemsServiceServicer_to_server(servicer, server)

    return HostedService(SERVICE_NAME, add_to_server, engine)
