from __future__ import annotations

from pathlib import Path

import pytest

from serving.exposure_log_config import ExposureLogConfig
from serving.local_behaviour_store_config import LocalBehaviourStoreConfig
from serving.serving_config import ServingConfig
from tests.serving.tiny_world import TinyWorld, tiny_world


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> TinyWorld:
    """The tiny dataset with exported MUSE and DIN bundles, shared by the whole session."""
    return tiny_world(tmp_path_factory.getbasetemp() / "tiny_world")


def serving_config(world: TinyWorld, directory, **overrides) -> ServingConfig:
    """A server config over the tiny world: any free ports, state under ``directory``."""
    values = {
        "bundle_root": world.bundle_root,
        "store": LocalBehaviourStoreConfig(
            dataset=world.dataset.root, directory=directory / "store"
        ),
        "port": 0,
        "metrics_port": 0,
        "exposure_log": ExposureLogConfig(
            directory=directory / "exposures", flush_interval_seconds=0.2
        ),
        "drain_grace_seconds": 20.0,
    }
    values.update(overrides)
    return ServingConfig(**values)


EXPERIMENTS_TOML = """
default_bundle = "muse"

[layers.ranking]
salt = "test-ranking"

[layers.ranking.default]
bundle = "muse"

[layers.ranking.experiments.muse_vs_din]
buckets = [{ start = 0, end = 9000 }]

[layers.ranking.experiments.muse_vs_din.variants.control]
bundle = "din"
buckets = [{ start = 0, end = 3000 }]

[layers.ranking.experiments.muse_vs_din.variants.treatment]
bundle = "muse"
buckets = [{ start = 3000, end = 6000 }]

[layers.ranking.experiments.muse_vs_din.variants.treatment_k12]
bundle = "muse"
buckets = [{ start = 6000, end = 9000 }]
overrides = { gsu_top_k = 12 }
"""


def write_experiments(directory) -> Path:
    """The test experiment config: DIN control, MUSE treatment, MUSE with K=12, a default."""
    path = directory / "experiments.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(EXPERIMENTS_TOML)
    return path
