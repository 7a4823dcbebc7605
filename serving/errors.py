"""Domain errors of the serving layer.

Request errors (:class:`ServingError` and its subclasses): the engine raises these and knows
nothing of gRPC; :mod:`serving.error_interceptor` is the one place that turns them into status
codes. Start-up errors (:class:`StartupError`) stop the server before it serves; ``muse serve``
reports them in one line.
"""

from __future__ import annotations

from muse.core.errors import InputError


class ServingError(Exception):
    """Base of every error the engine reports to a caller; ``str(error)`` is safe to send."""


class InvalidArgument(ServingError):
    """The request itself is wrong; the message names the offending field."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class ModelNotFound(ServingError):
    """The request names a model bundle or variant that is not loaded."""


class ItemNotFound(ServingError):
    """The request names an item the loaded index does not hold."""


class VariantUnavailable(ServingError):
    """The user's assigned variant exists but its model cannot serve (for example, failed to load)."""


class Overloaded(ServingError):
    """Admission is full: the request is rejected at once instead of queueing without bound."""


class NotReady(ServingError):
    """The server is starting or draining and does not take new work."""


class DeadlineExpired(ServingError):
    """The caller's deadline passed before the work started, so the work was skipped."""


class StartupError(InputError):
    """The server cannot start as configured: its port is taken, its behaviour store is open in
    another process. The operator fixes the config or the machine, not the code; the message
    starts with the address or directory at fault."""


class StoreInUse(StartupError, RuntimeError):
    """The behaviour store's directory is locked by another process."""
