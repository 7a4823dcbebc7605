"""The one error type for bad input data: it always names the file, the column and the problem."""

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
