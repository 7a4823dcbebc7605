"""The two error types for bad input: data files and configuration. Each names its source."""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """Input data is unusable. ``str(error)`` reads ``<file>: column '<col>': <problem>``."""

    def __init__(self, path: str | Path, problem: str, column: str | None = None) -> None:
        self.path = str(path)
        self.column = column
        self.problem = problem
        where = f"{self.path}: column {column!r}: " if column else f"{self.path}: "
        super().__init__(where + problem)


class ConfigError(ValueError):
    """A configuration file or override is invalid; the message names the source and key."""
