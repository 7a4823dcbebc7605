"""Shared fixtures for the data-layer tests: the Taobao-MM schema fixture and small log writers."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.features.data_files import TAOBAO_FIXTURE, write_table


@pytest.fixture
def taobao_copy(tmp_path: Path) -> Path:
    """A writable copy of the Taobao-MM fixture directory."""
    target = tmp_path / "taobao"
    target.mkdir()
    for source in TAOBAO_FIXTURE.glob("*.parquet"):
        shutil.copyfile(source, target / source.name)
    return target


@pytest.fixture
def table_writer(tmp_path: Path) -> Callable[..., Path]:
    """``table_writer(name, columns, schema=None)`` writes ``tmp_path/name`` and returns its path."""

    def write(name: str, columns: dict[str, Any], schema: dict[str, Any] | None = None) -> Path:
        return write_table(tmp_path / name, columns, schema)

    return write
