"""What one gRPC service brings to the shared server: its name, its servicer and its engine.

Each service is a thin servicer (protos in, engine call, protos out) over a transport-free engine.
The host (:class:`serving.server.MuseServer`) gives every service the same health checks,
reflection, metrics registry, admission, deadlines, error mapping and graceful drain; it drives
the engine only through :class:`ServiceEngine`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import grpc

from serving.admission import Admission
from serving.metrics import ServingMetrics
from serving.serving_config import ServingConfig


class ServiceEngine(Protocol):
    """The lifecycle the host drives; requests reach the engine through its servicer only."""

    def load(self) -> None:
        """Load models and state and warm up; blocking, so the host runs it on a thread."""
        ...

    def start(self) -> None:
        """Start taking work on the running event loop; called once after :meth:`load`."""
        ...

    async def close(self) -> None:
        """Stop taking work, finish what is queued, release resources."""
        ...


@dataclass(frozen=True)
class HostedService:
    """One service on the host: ``name`` is the full gRPC name (``package.Service``)."""

    name: str
    # Registers the service's servicer with a grpc.aio server (the generated add_*_to_server).
    add_to_server: Callable[[grpc.aio.Server], None]
    engine: ServiceEngine


# Builds a service over what the host shares: the server config, the metrics registry, admission.
ServiceFactory = Callable[[ServingConfig, ServingMetrics, Admission], HostedService]
