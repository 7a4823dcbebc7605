"""`muse i2i index` end to end: a synthetic catalogue's oracle embeddings → a served-ready bundle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from muse.cli.main import main
from muse.item2item.index.index_bundle import read_index_bundle
from muse.item2item.index.index_config import IndexKind

ROOT = Path(__file__).resolve().parents[2]
TINY = ["num_items=400", "pairs.train_pairs=300", "pairs.test_pairs=60", "image.size=16"]


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("items") / "items"
    args = ["data", "synth-items", "--config", str(ROOT / "configs/data/items_default.toml")]
    args += [part for setting in TINY for part in ("--set", setting)]
    assert main([*args, "--out", str(out), "--no-progress"]) == 0
    return out


@pytest.mark.parametrize("kind", ["exact", "hnsw"])
def test_index_command_writes_a_bundle_with_categories_and_recall(
    catalogue: Path, tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "similar_items"
    args = ["i2i", "index", "--embeddings", str(catalogue / "oracle_embeddings.npy")]
    args += ["--ids", str(catalogue / "oracle_item_ids.npy")]
    args += ["--items", str(catalogue / "items.parquet"), "--set", f"kind={kind}"]
    assert main([*args, "--out", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    index, manifest = read_index_bundle(out)
    assert index.config.kind is IndexKind(kind) and index.size == 400
    assert manifest["recall_against_exact"]["recall"] == pytest.approx(1.0)
    np.testing.assert_array_equal(
        np.sort(index.item_ids), np.sort(np.load(catalogue / "oracle_item_ids.npy"))
    )
    assert len(index.category_names) > 2 and index.category_code(index.category_names[1]) == 1


def test_index_command_names_a_missing_embedding_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere.parquet"
    code = main(["i2i", "index", "--embeddings", str(missing), "--out", str(tmp_path / "out")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and str(missing) in lines[0]
    assert not (tmp_path / "out").exists()
