"""The one place where errors become gRPC status codes; it also times and counts every RPC.

KServe style: servicers convert protos and call the engine; whatever the engine raises is mapped
here. Unparsable request bytes become INVALID_ARGUMENT naming the broken field instead of the
UNKNOWN status grpc would otherwise send.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from serving.errors import (
    DeadlineExpired,
    InvalidArgument,
    ItemNotFound,
    ModelNotFound,
    NotReady,
    Overloaded,
    VariantUnavailable,
)
from serving.metrics import ServingMetrics, variant_label
from serving.wire_format import largest_field, malformed_field

logger = logging.getLogger("muse.serving")

_STATUS_OF_ERROR: tuple[tuple[type[Exception], grpc.StatusCode], ...] = (
    (InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (ModelNotFound, grpc.StatusCode.NOT_FOUND),
    (ItemNotFound, grpc.StatusCode.NOT_FOUND),
    (VariantUnavailable, grpc.StatusCode.FAILED_PRECONDITION),
    (Overloaded, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (NotReady, grpc.StatusCode.UNAVAILABLE),
    (DeadlineExpired, grpc.StatusCode.DEADLINE_EXCEEDED),
)


def status_for(error: BaseException) -> tuple[grpc.StatusCode, str]:
    """Status code and caller-safe message for ``error``; anything unexpected is INTERNAL."""
    for error_type, code in _STATUS_OF_ERROR:
        if isinstance(error, error_type):
            return code, str(error)
    return grpc.StatusCode.INTERNAL, "internal error"


class MalformedRequest:
    """Stands in for a request whose bytes did not parse; the handler raises ``error``."""

    def __init__(self, error: InvalidArgument) -> None:
        self.error = error


def tolerant_deserializer(
    deserializer: Callable[[bytes], Any], max_bytes: int
) -> Callable[[bytes], Any]:
    """Wrap a protobuf ``FromString``: corrupt or oversize bytes give a MalformedRequest.

    gRPC's own receive limit (set higher, as a memory backstop) would answer RESOURCE_EXHAUSTED
    without naming anything; below it, the application limit names the field that is too big.
    """
    descriptor = getattr(getattr(deserializer, "__self__", None), "DESCRIPTOR", None)

    def deserialize(data: bytes) -> Any:
        if len(data) > max_bytes:
            field = largest_field(data, descriptor) if descriptor is not None else "message"
            return MalformedRequest(
                InvalidArgument(field, f"request is {len(data)} bytes; the maximum is {max_bytes}")
            )
        try:
            return deserializer(data)
        except DecodeError:
            field = malformed_field(data, descriptor) if descriptor is not None else "message"
            return MalformedRequest(InvalidArgument(field, "malformed protobuf wire format"))

    return deserialize


class ErrorMappingInterceptor(grpc.aio.ServerInterceptor):
    """Maps domain errors to status codes, logs unexpected ones, records metrics per RPC."""

    def __init__(self, metrics: ServingMetrics, max_message_bytes: int) -> None:
        self._metrics = metrics
        self._max_message_bytes = max_message_bytes
        # The wrapped handler of each method's handler, built once instead of on every RPC.
        self._wrapped: dict[int, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler  # Health Watch and reflection streams pass through untouched.
        cached = self._wrapped.get(id(handler))
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._wrap(handler, handler_call_details.method)
        self._wrapped[id(handler)] = (handler, wrapped)
        return wrapped

    def _wrap(self, handler: grpc.RpcMethodHandler, full_method: str) -> grpc.RpcMethodHandler:
        """``handler`` with errors mapped to status codes and every call timed and counted."""
        # "/package.Service/Method": every hosted service's RPCs are counted apart.
        service, _, method = full_method.lstrip("/").rpartition("/")
        behaviour = handler.unary_unary
        metrics = self._metrics
        # (status, variant) → this method's counter and histogram: labels() locks and hashes.
        children: dict[tuple[grpc.StatusCode, str], tuple[Any, Any]] = {}

        async def mapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            variant_label.set("none")
            code = grpc.StatusCode.OK
            try:
                if isinstance(request, MalformedRequest):
                    raise request.error
                return await behaviour(request, context)
            except asyncio.CancelledError:
                remaining = context.time_remaining()
                expired = remaining is not None and remaining <= 0
                code = grpc.StatusCode.DEADLINE_EXCEEDED if expired else grpc.StatusCode.CANCELLED
                raise
            except Exception as error:
                code, message = status_for(error)
                if code == grpc.StatusCode.INTERNAL:
                    incident = uuid.uuid4().hex[:12]
                    logger.exception(
                        "unexpected error",
                        extra={"service": service, "method": method, "incident": incident},
                    )
                    message = f"{message} (incident {incident})"
                await context.abort(code, message)
            finally:
                variant = variant_label.get()
                series = children.get((code, variant))
                if series is None:
                    series = children[(code, variant)] = (
                        metrics.requests.labels(service, method, code.name, variant),
                        metrics.latency.labels(service, method, variant),
                    )
                series[0].inc()
                series[1].observe(time.perf_counter() - started)

        deserializer = handler.request_deserializer
        return grpc.unary_unary_rpc_method_handler(
            mapped,
            request_deserializer=tolerant_deserializer(deserializer, self._max_message_bytes)
            if deserializer
            else None,
            response_serializer=handler.response_serializer,
        )
