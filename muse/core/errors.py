"""The errors bad input causes: a config, a data file, a model bundle the user points at.

Every one derives from :class:`InputError`: the user fixes it by changing the input, not the code.
``muse`` prints such an error as one line, ``muse <command>: <file>: <what is wrong>``, and exits
with code 2; any other exception is an internal error and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """Base of the bad-input errors; ``str(error)`` starts with the file (or other source) at fault.

    ``problems`` holds one message per problem; most errors have one, a validator may find several.
    """

    @property
    def problems(self) -> list[str]:
        return [str(self)]

    def one_line(self) -> str:
        """The first problem on one line, and how many more there are."""
        problems = self.problems
        first = " ".join(problems[0].split()) if problems else type(self).__name__
        more = len(problems) - 1
        return f"{first} (and {more} more problem{'s' if more > 1 else ''})" if more else first


class DataError(InputError, ValueError):
    """Input data is unusable. ``str(error)`` reads ``<file>: column '<col>': <problem>``."""

    def __init__(self, path: str | Path, problem: str, column: str | None = None) -> None:
        self.path = str(path)
        self.column = column
        self.problem = problem
        where = f"{self.path}: column {column!r}: " if column else f"{self.path}: "
        super().__init__(where + problem)


class ConfigError(InputError, ValueError):
    """A configuration file or override is invalid; the message names the source and key."""
