from __future__ import annotations

import pytest

from tests.serving.tiny_world import TinyWorld, tiny_world


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> TinyWorld:
    """The tiny dataset with exported MUSE and DIN bundles, shared by the whole session."""
    return tiny_world(tmp_path_factory.getbasetemp() / "tiny_world")
