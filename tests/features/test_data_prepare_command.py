"""`muse data prepare taobao-mm | events`: writes a dataset, prints a summary, saves the config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from features.dataset import Dataset
from features.event_log import EventLogConfig
from muse.cli.main import main
from muse.core.config_loader import load_config
from tests.features.data_files import TAOBAO_FIXTURE, write_table

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "data"


def test_prepare_taobao_mm_fixture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "dataset"
    code = main(
        [
            "data",
            "prepare",
            "taobao-mm",
            "--input",
            str(TAOBAO_FIXTURE),
            "--out",
            str(out),
            "--no-progress",
            "--set",
            "max_sequence_length=500",
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert "users    23" in printed and "behaviour events 9,851" in printed
    assert "test     10 samples, 10.0% positive" in printed and "5.0% positive" in printed
    dataset = Dataset(out)
    assert dataset.manifest["source"]["reader"] == "taobao-mm"
    assert dataset.manifest["source"]["config"]["max_sequence_length"] == 500
    assert int(np.diff(dataset.sequence_offsets).max()) == 500


def test_prepare_events_with_example_config_and_overrides(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(4)
    kinds = rng.choice(np.array(["impression", "click", "purchase"]), size=400)
    events = write_table(
        tmp_path / "log" / "events.parquet",
        {
            "user_id": rng.integers(0, 20, size=400),
            "item_id": rng.integers(0, 50, size=400),
            "timestamp": rng.integers(0, 10_000, size=400),
            "event_type": kinds,
            "label": [int(rng.integers(0, 2)) if kind == "impression" else None for kind in kinds],
        },
    )
    items = write_table(
        tmp_path / "log" / "items.parquet",
        {"item_id": np.arange(50), "category_id": np.arange(50) % 7, "brand": np.arange(50) % 3},
    )
    vectors, ids = tmp_path / "log" / "vectors.npy", tmp_path / "log" / "ids.npy"
    np.save(vectors, rng.integers(-127, 128, size=(50, 8)).astype(np.int8))
    np.save(ids, np.arange(50))
    out = tmp_path / "dataset"
    overrides = [
        f"events={events}",
        f"items.path={items}",
        f"embeddings.path={vectors}",
        f"embeddings.ids_path={ids}",
        "max_sequence_length=10",
        "test_fraction=0.2",
    ]
    argv = [
        "data",
        "prepare",
        "events",
        "--config",
        str(CONFIGS / "events_example.toml"),
        "--out",
        str(out),
        "--no-progress",
    ]
    assert main(argv + [arg for override in overrides for arg in ("--set", override)]) == 0
    printed = capsys.readouterr().out
    assert "users    20" in printed and "elapsed" in printed
    dataset = Dataset(out)
    source = dataset.manifest["source"]
    assert source["reader"] == "event-log" and source["config"]["max_sequence_length"] == 10
    assert source["config"]["items"]["attributes"] == ["brand"]
    assert source["config_file"].endswith("events_example.toml")
    assert int(np.diff(dataset.sequence_offsets).max()) == 10
    assert dataset.item_embeddings.dtype == np.int8 and dataset.embedding_dim == 8


def test_every_events_config_loads() -> None:
    paths = sorted(CONFIGS.glob("events_*.toml"))
    assert len(paths) >= 2
    for path in paths:
        config = load_config(EventLogConfig, path)
        assert config.max_sequence_length >= 1


def test_prepare_rejects_unknown_config_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "data",
            "prepare",
            "taobao-mm",
            "--input",
            str(TAOBAO_FIXTURE),
            "--out",
            str(tmp_path / "ds"),
            "--set",
            "batch_size=3",
        ]
    )
    assert code == 2 and "unknown key(s) batch_size" in capsys.readouterr().err
    assert not (tmp_path / "ds").exists()
