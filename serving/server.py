"""The grpc.aio server that hosts every muse service: health, reflection, /metrics, graceful drain.

Each hosted service (:class:`serving.hosted_service.HostedService`) is a thin servicer over its own
transport-free engine; the services share one port, one admission limit, one metrics registry,
the error-mapping interceptor, the health service (overall "" plus one status per service) and
reflection.

Start-up: listen at once with every health status NOT_SERVING (RPCs get UNAVAILABLE), load each
engine on a thread and start it, flipping that service's status to SERVING, then the overall one.
A start that fails (a missing bundle, a taken port) shuts down what it had started and raises; bad
configuration raises a :class:`muse.core.errors.InputError` (``muse`` reports it in one line).
Shutdown (SIGTERM or :meth:`MuseServer.stop`): health goes NOT_SERVING, the server stops accepting
RPCs and gives in-flight ones ``drain_grace_seconds`` to finish, then every engine drains its
queue and releases what it holds.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import signal
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from muse.core.atomic_write import write_text_atomic
from serving.admission import Admission
from serving.error_interceptor import ErrorMappingInterceptor
from serving.errors import StartupError
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
        """Bind, load every engine, and start serving; returns once overall health is SERVING.

        If anything fails, what was started is shut down again (the port released, every engine
        closed, /metrics stopped) before the error propagates: the process can exit cleanly.
        """
        try:
            await self._start()
        except BaseException:
            try:
                await self._shut_down(grace=0.0)
            except Exception:  # keep the error that stopped the start, log this one
                logger.exception("shutting down after a failed start")
            raise

    async def _start(self) -> None:
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
        self._server = server
        for service in self.services:
            service.add_to_server(server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            (*self.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
        for name in ("", *self.service_names):
            await self.health.set(name, _NOT_SERVING)
        address = f"{self.config.host}:{self.config.port}"
        _check_listenable(self.config.host, self.config.port)
        try:
            self.port = server.add_insecure_port(address)
        except RuntimeError:  # newer grpcio raises where older ones returned 0
            self.port = 0
        if self.port == 0:
            raise StartupError(
                f"{address}: cannot listen there (is another process using the port?)"
            )
        await server.start()
        if self.config.metrics_port >= 0:
            metrics_address = f"{self.config.metrics_host}:{self.config.metrics_port}"
            try:
                self._metrics_http = self.metrics.serve_http(
                    self.config.metrics_host, self.config.metrics_port
                )
            except OSError as error:
                raise StartupError(
                    f"{metrics_address}: cannot serve /metrics there ({error.strerror or error})"
                ) from error
            self.metrics_port = int(self._metrics_http.server_port)
        for service in self.services:
            await asyncio.to_thread(service.engine.load)
            service.engine.start()
            await self.health.set(service.name, _SERVING)
        # The loaded bundles live as long as the process: keep them out of every later full
        # garbage collection, whose pauses would otherwise land in the latency tail.
        gc.collect()
        gc.freeze()
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
        await self._shut_down(grace)
        logger.info("stopped")

    async def _shut_down(self, grace: float) -> None:
        """Stop the gRPC server (in-flight RPCs get ``grace`` s), every engine and /metrics."""
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None
        for service in self.services:
            await service.engine.close()
        if self._metrics_http is not None:
            self._metrics_http.shutdown()
            self._metrics_http.server_close()
            self._metrics_http = None

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


def _check_listenable(host: str, port: int) -> None:
    """Raise StartupError if ``host:port`` cannot be bound (another process listens there).

    Checked before gRPC binds, so a taken port is one clear error instead of gRPC's own log line.
    """
    if port == 0:
        return
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        message = f"{host}:{port}: cannot resolve host {host!r} ({error.strerror})"
        raise StartupError(message) from None
    for family, kind, protocol, _, address in addresses:
        with socket.socket(family, kind, protocol) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC binds
            try:
                probe.bind(address)
            except OSError as error:
                message = f"{host}:{port}: cannot listen there: {error.strerror}"
                raise StartupError(message) from None


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
