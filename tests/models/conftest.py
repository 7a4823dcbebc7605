"""Fixtures for the model tests (helpers live in tiny_models.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from muse.ranking.models import FeatureSpec
from muse.search import EmbeddingTable
from tests.models.tiny_models import tiny_features, tiny_table


@pytest.fixture(scope="session")
def features() -> FeatureSpec:
    return tiny_features()


@pytest.fixture(scope="session")
def table() -> EmbeddingTable:
    return tiny_table()


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny tensors: thread hand-offs cost far more than the work on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
