"""Smoke test of the real Taobao-MM schema: its fixture files → dataset → MUSE trains and scores.

The fixture's sample users are not the users of its feature files (they become rows without
history), so a second check scores the 20 feature-file users' 1,000-long real-schema histories.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from features.dataset import Dataset, write_dataset
from features.taobao_mm import read_taobao_mm
from muse.core.config_loader import load_config
from muse.ranking.training.batch_builder import BatchBuilder
from muse.ranking.training.model_construction import prepare_model
from muse.ranking.training.sample_table import SampleTable
from muse.ranking.training.train_config import TrainConfig
from muse.ranking.training.training_job import train
from muse.training.distributed import DistributedContext

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "taobao_mm_demo"
MUSE_CONFIG = ROOT / "configs" / "ranking" / "muse.toml"



@pytest.fixture(scope="module")
def fixture_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(read_taobao_mm(FIXTURE), tmp_path_factory.mktemp("taobao") / "dataset")


def test_muse_trains_and_evaluates_on_the_taobao_fixture(
    fixture_dataset: Path, tmp_path: Path
) -> None:
    config = load_config(
        TrainConfig,
        MUSE_CONFIG,
        [
            f"data.dataset={json.dumps(str(fixture_dataset))}",
            "data.max_history_length=1000",
            "data.validation_fraction=0.5",
            "training.batch_size=4",
            "training.evaluation_batch_size=8",
            "training.max_epochs=1",
            "training.threads=1",
            "training.prefetch_batches=0",
        ],
    )
    result = train(config, tmp_path / "run", progress=False)
    assert 1 <= result.steps <= 3
    assert result.epochs == 1
    # The test split holds one click among ten impressions of one user: every metric is defined.
    assert result.test.num_samples == 10
    for value in (result.test.auc, result.test.gauc, result.test.logloss):
        assert math.isfinite(value)
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["model"] == "muse" and saved["num_samples"] == 10
    assert (tmp_path / "run" / "config.toml").is_file()


def test_muse_scores_real_schema_histories(fixture_dataset: Path) -> None:
    config = load_config(
        TrainConfig, MUSE_CONFIG, [f"data.dataset={json.dumps(str(fixture_dataset))}"]
    )
    dataset = Dataset(fixture_dataset)
    model = prepare_model(config.model, dataset, DistributedContext(), 0.05, 1e-8).module
    lengths = np.diff(np.asarray(dataset.sequence_offsets))
    users = np.flatnonzero(lengths > 0)  # the feature-file users, 351 to 1,000 behaviours each
    targets = dataset.samples("test")["item_index"].to_numpy().astype(np.int64)
    rows = SampleTable(
        user_index=users.astype(np.int64),
        item_index=np.resize(targets, users.size),
        label=np.zeros(users.size, dtype=np.float32),
        history_end=lengths[users].astype(np.int64),
        timestamp=np.zeros(users.size, dtype=np.int64),
        user_id=users.astype(np.int64),
    )
    batch = BatchBuilder(dataset, 1000).build(rows, np.arange(users.size))
    assert batch.history_items.shape == (users.size, 1000)
    assert int(batch.history_length.max()) == 1000 and int(batch.history_length.min()) == 351
    with torch.no_grad():
        output = model(batch)
    assert output.logits.shape == (users.size,)
    assert torch.isfinite(output.logits).all()
