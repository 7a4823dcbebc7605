"""The ranking service on the shared host: muse.serving.v1.RankingService over a RankingEngine."""

from __future__ import annotations

import grpc

from serving.admission import Admission
from serving.hosted_service import HostedService
from serving.metrics import ServingMetrics
from serving.proto_gen.muse.serving.v1 import ranking_pb2, ranking_pb2_grpc
from serving.ranking.engine import RankingEngine
from serving.ranking.servicer import RankingServicer
from serving.serving_config import ServingConfig

SERVICE_NAME = ranking_pb2.DESCRIPTOR.services_by_name["RankingService"].full_name


def ranking_service(
    config: ServingConfig, metrics: ServingMetrics, admission: Admission
) -> HostedService:
    """The ranking engine and its servicer, ready for :class:`serving.server.MuseServer`."""
    engine = RankingEngine(config, metrics)
    servicer = RankingServicer(engine, admission)

    def add_to_server(server: grpc.aio.Server) -> None:
        ranking_pb2_grpc.add_RankingServiceServicer_to_server(servicer, server)

    return HostedService(SERVICE_NAME, add_to_server, engine)
