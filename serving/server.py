"""The grpc.aio server that hosts every muse service: health, reflection, /metrics, graceful drain.

Each hosted service (:class:`serving.hosted_service.HostedService`) is a thin servicer over its own
transport-free engine; the services share one port, one admission limit, one metrics registry,
the error-mapping interceptor, the health service (overall "" plus one status per service) and
reflection.

Start-up: listen at once with every health status NOT_SERVING (RPCs get UNAVAILABLE), load each
engine on a thread and start it, flipping that service's status to SERVING, then the overall one.
Shutdown (SIGTERM or :meth:`MuseServer.stop`): health goes NOT_SERVING, the server stops accepting
RPCs and gives in-flight ones ``drain_grace_seconds`` to finish, then every engine drains its
queue and releases what it holds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from muse.core.atomic_write import write_text_atomic
from serving.admission import Admission
from serving.error_interceptor import ErrorMappingInterceptor
from serving.hosted_service import ServiceFactory
from serving.metrics import ServingMetrics
from serving.serving_config import ServingConfig

logger = logging.getLogger("muse.serving")

_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class MuseServer:
    """One server process's gRPC server, its hosted services and the metrics endpoint."""

    def __init__(self, config: ServingConfig, services: Sequence[ServiceFactory]) -> None:
        self.config = config
        self.metrics = ServingMetrics()
        self.admission = Admission(config.limits.max_in_flight)
        self.metrics.in_flight.set_function(lambda: self.admission.in_flight)
        self.services = [make(config, self.metrics, self.admission) for make in services]
        names = [service.name for service in self.services]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"host at least one service, each once; got {names}")
        self.health = health.aio.HealthServicer()
        self.port: int | None = None
        self.metrics_port: int | None = None
        self._server: grpc.aio.Server | None = None
        self._metrics_http: Any = None

    @property
    def address(self) -> str:
        return f"{self.config.host}:{self.port}"

    @property
    def service_names(self) -> list[str]:
        return [service.name for service in self.services]

    async def start(self) -> None:
        """Bind, load every engine, and start serving; returns once overall health is SERVING."""
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
        for service in self.services:
            service.add_to_server(server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            (*self.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
        for name in ("", *self.service_names):
            await self.health.set(name, _NOT_SERVING)
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
        for service in self.services:
            await asyncio.to_thread(service.engine.load)
            service.engine.start()
            await self.health.set(service.name, _SERVING)
        await self.health.set("", _SERVING)
        logger.info(
            "serving",
            extra={
                "address": self.address,
                "metrics_port": self.metrics_port,
                "services": self.service_names,
            },
        )

    async def stop(self, grace: float | None = None) -> None:
        """Stop accepting, drain in-flight RPCs within ``grace`` seconds, close every engine."""
        grace = self.config.drain_grace_seconds if grace is None else grace
        logger.info(
            "draining", extra={"grace_seconds": grace, "in_flight": self.admission.in_flight}
        )
        await self.health.enter_graceful_shutdown()
        if self._server is not None:
            await self._server.stop(grace)
        for service in self.services:
            await service.engine.close()
        if self._metrics_http is not None:
            self._metrics_http.shutdown()
            self._metrics_http.server_close()
        logger.info("stopped")

    def write_ready_file(self, path: Path) -> None:
        """Record the bound address, ports and services (JSON) for whoever started this process."""
        write_text_atomic(
            path,
            json.dumps(
                {
                    "address": self.address,
                    "port": self.port,
                    "metrics_port": self.metrics_port,
                    "pid": os.getpid(),
                    "services": self.service_names,
                }
            ),
        )


async def serve_until_signalled(
    config: ServingConfig, services: Sequence[ServiceFactory], ready_file: Path | None = None
) -> None:
    """Host ``services`` until SIGTERM or SIGINT, then drain them gracefully."""
    server = MuseServer(config, services)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, stop.set)
    await server.start()
    if ready_file is not None:
        server.write_ready_file(ready_file)
    await stop.wait()
    await server.stop()
