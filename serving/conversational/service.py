"""The conversational service on the shared host: ConversationalService over its engine."""

from __future__ import annotations

import grpc

from serving.admission import Admission
from serving.conversational.engine import ConversationalEngine
from serving.conversational.servicer import ConversationalServicer
from serving.hosted_service import HostedService
from serving.metrics import ServingMetrics
from serving.proto_gen.muse.serving.v1 import conversational_pb2, conversational_pb2_grpc
from serving.serving_config import ServingConfig

SERVICE_NAME = conversational_pb2.DESCRIPTOR.services_by_name["ConversationalService"].full_name


def conversational_service(
    config: ServingConfig, metrics: ServingMetrics, admission: Admission
) -> HostedService:
    """The conversational engine and its servicer; needs ``config.conversational``."""
    if config.conversational is None:
        raise ValueError("the conversational service needs a [conversational] table in the config")
    engine = ConversationalEngine(config.conversational, metrics)
    servicer = ConversationalServicer(engine, admission)

    def add_to_server(server: grpc.aio.Server) -> None:
        conversational_pb2_grpc.add_ConversationalServiceServicer_to_server(servicer, server)

    return HostedService(SERVICE_NAME, add_to_server, engine)
