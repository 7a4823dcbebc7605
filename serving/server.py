"""The grpc.aio ranking server: RankingService, health, reflection, /metrics, graceful drain.

Start-up: listen at once with health NOT_SERVING (RPCs get UNAVAILABLE), load bundles and the
store on a thread, then flip health to SERVING. Shutdown (SIGTERM or :meth:`stop`): health goes
NOT_SERVING, the server stops accepting RPCs and gives in-flight ones ``drain_grace_seconds`` to
finish, then the engine drains its queue and closes the store and exposure log.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from muse.core.atomic_write import write_text_atomic
from serving.admission import Admission
from serving.error_interceptor import ErrorMappingInterceptor
from serving.metrics import ServingMetrics
from serving.proto_gen.muse.serving.v1 import ranking_pb2, ranking_pb2_grpc
from serving.ranking.engine import RankingEngine
from serving.ranking.servicer import RankingServicer
from serving.serving_config import ServingConfig

logger = logging.getLogger("muse.serving")
SERVICE_NAME = ranking_pb2.DESCRIPTOR.services_by_name["RankingService"].full_name


class RankingServer:
    """One server process's gRPC server, engine and metrics endpoint."""

    def __init__(self, config: ServingConfig) -> None:
        self.config = config
        self.metrics = ServingMetrics()
        self.engine = RankingEngine(config, self.metrics)
        self.admission = Admission(config.limits.max_in_flight)
        self.health = health.aio.HealthServicer()
        self.port: int | None = None
        self.metrics_port: int | None = None
        self._server: grpc.aio.Server | None = None
        self._metrics_http: Any = None
        self._stopped = asyncio.Event()

    @property
    def address(self) -> str:
        return f"{self.config.host}:{self.port}"

    async def start(self) -> None:
        """Bind, load everything, and start serving; returns once health is SERVING."""
        limits = self.config.limits
        hard_limit = limits.max_message_bytes * limits.grpc_hard_limit_factor
        server = grpc.aio.server(
            interceptors=[ErrorMappingInterceptor(self.metrics, limits.max_message_bytes)],
            options=[
                ("grpc.max_receive_message_length", hard_limit),
                ("grpc.max_send_message_length", hard_limit),
                ("grpc.so_reuseport", 0),  # a taken port must fail, not be silently shared
            ],
        )
        ranking_pb2_grpc.add_RankingServiceServicer_to_server(
            RankingServicer(self.engine, self.admission), server
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
        for service in ("", SERVICE_NAME):
            await self.health.set(service, health_pb2.HealthCheckResponse.NOT_SERVING)
        self.port = server.add_insecure_port(f"{self.config.host}:{self.config.port}")
        if self.port == 0:
            raise OSError(f"cannot bind {self.config.host}:{self.config.port}")
        self._server = server
        await server.start()
        if self.config.metrics_port >= 0:
            self._metrics_http = self.metrics.serve_http(
                self.config.metrics_host, self.config.metrics_port
            )
            self.metrics_port = int(self._metrics_http.server_port)
        await asyncio.to_thread(self.engine.load)
        self.engine.start()
        for service in ("", SERVICE_NAME):
            await self.health.set(service, health_pb2.HealthCheckResponse.SERVING)
        logger.info(
            "serving",
            extra={
                "address": self.address,
                "metrics_port": self.metrics_port,
                "bundles": {name: bundle.version for name, bundle in self.engine.bundles.items()},
            },
        )

    async def stop(self, grace: float | None = None) -> None:
        """Stop accepting, drain in-flight RPCs within ``grace`` seconds, release everything."""
        grace = self.config.drain_grace_seconds if grace is None else grace
        logger.info(
            "draining", extra={"grace_seconds": grace, "in_flight": self.admission.in_flight}
        )
        await self.health.enter_graceful_shutdown()
        if self._server is not None:
            await self._server.stop(grace)
        await self.engine.close()
        if self._metrics_http is not None:
            self._metrics_http.shutdown()
            self._metrics_http.server_close()
        logger.info("stopped")
        self._stopped.set()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    def write_ready_file(self, path: Path) -> None:
        """Record the bound address and ports (JSON) for whoever started this process."""
        write_text_atomic(
            path,
            json.dumps(
                {
                    "address": self.address,
                    "port": self.port,
                    "metrics_port": self.metrics_port,
                    "pid": os.getpid(),
                    "bundles": {
                        name: bundle.version for name, bundle in self.engine.bundles.items()
                    },
                }
            ),
        )


async def serve_until_signalled(config: ServingConfig, ready_file: Path | None = None) -> None:
    """Run a server until SIGTERM or SIGINT, then drain it gracefully."""
    server = RankingServer(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, stop.set)
    await server.start()
    if ready_file is not None:
        server.write_ready_file(ready_file)
    await stop.wait()
    await server.stop()
