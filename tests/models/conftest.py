"""Fixtures for the model tests (helpers live in tiny_models.py)."""

from __future__ import annotations

import pytest

from muse.models import FeatureSpec
from muse.search import EmbeddingTable
from tests.models.tiny_models import tiny_features, tiny_table


@pytest.fixture(scope="session")
def features() -> FeatureSpec:
    return tiny_features()


@pytest.fixture(scope="session")
def table() -> EmbeddingTable:
    return tiny_table()
