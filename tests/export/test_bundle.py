"""The exported bundle: ONNX parity with torch, dynamic axes, manifest checksums, atomic writes."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch

from features.dataset import FORMAT_VERSION
from muse.core.config_loader import config_from_dict
from muse.core.errors import DataError
from muse.core.ids import OOV_INDEX
from muse.core.task_kind import TaskKind
from muse.export.bundle_format import MANIFEST_FILE, read_manifest, sha256_of
from muse.ranking.export.bundle_layout import GRAPH_FILE, REQUEST_GRAPH_FILE
from muse.ranking.export.bundle_writer import export_bundle
from muse.ranking.export.serving_recipe import ServingRecipe, serving_recipe
from muse.ranking.models.ranking_config import RankingModelConfig, SearchConfig, SearchKind
from muse.ranking.models.scoring_inputs import ScoringInputs
from tests.serving.tiny_world import (
    EMPTY_USER,
    LONG_USER,
    SHORT_USER,
    TinyWorld,
    ranking_batch,
    tiny_model,
)

# Rows: no history, history shorter than K, long history, OOV target, and a spread of users.
USERS = [EMPTY_USER, SHORT_USER, LONG_USER, LONG_USER, 5, 6, 7, 8, EMPTY_USER]
ITEMS = [10, 20, 30, OOV_INDEX, 40, 50, 60, 70, OOV_INDEX]


def _session(bundle: Path) -> onnxruntime.InferenceSession:
    return onnxruntime.InferenceSession(
        str(bundle / GRAPH_FILE), providers=["CPUExecutionProvider"]
    )


def _run(session: onnxruntime.InferenceSession, inputs: ScoringInputs) -> np.ndarray:
    names = {node.name for node in session.get_inputs()}
    feeds = {
        name: tensor.numpy()
        for name, tensor in zip(inputs._fields, inputs, strict=True)
        if name in names
    }
    return session.run(None, feeds)[0]


@pytest.mark.parametrize("model_name", ["muse", "din", "sim_hard"])
def test_onnx_matches_torch_on_empty_short_and_oov_histories(
    world: TinyWorld, model_name: str
) -> None:
    model = getattr(world, model_name)
    batch = ranking_batch(world.dataset, USERS, ITEMS)
    assert (
        int(batch.history_length[0]) == 0
        and int(batch.history_length[1]) < model.config.search.top_k
    )
    assert bool((batch.history_items == OOV_INDEX).any())
    with torch.no_grad():
        inputs = model.select(batch)
        expected = model.score(inputs).numpy()
    got = _run(_session(world.bundle_root / model_name), inputs)
    assert got.shape == expected.shape == (len(USERS),)
    assert np.isfinite(got).all()
    assert np.abs(got - expected).max() <= 1e-5
    assert np.ptp(expected) > 1e-3  # the rows really differ, so parity is not trivially constant


def test_batch_and_top_k_axes_are_dynamic(world: TinyWorld) -> None:
    session = _session(world.bundle_root / "muse")
    for rows, top_k in ((1, 3), (7, 12)):
        model = tiny_model(
            world.dataset, replace(world.muse.config, search=SearchConfig(top_k=top_k)), seed=1
        )
        batch = ranking_batch(world.dataset, USERS[:rows], ITEMS[:rows])
        with torch.no_grad():
            inputs = model.select(batch)
            expected = model.score(inputs).numpy()
        assert inputs.selected_items.shape == (rows, top_k)
        assert np.abs(_run(session, inputs) - expected).max() <= 1e-5


def test_manifest_records_schema_config_table_and_checksums(world: TinyWorld) -> None:
    bundle = world.bundle_root / "muse"
    manifest = read_manifest(bundle, TaskKind.RANKING)
    assert manifest["feature_schema_version"] == FORMAT_VERSION
    assert config_from_dict(RankingModelConfig, manifest["model_config"]) == world.muse.config
    assert ServingRecipe.from_dict(manifest["serving"]) == serving_recipe(world.muse)
    assert manifest["version"].startswith("muse@") and manifest["created_unix"] > 0
    table = manifest["item_table"]
    assert table["sha256"] == sha256_of(world.dataset.root / "item_embeddings.npy")
    assert table["shape"] == list(world.dataset.item_embeddings.shape)
    files = manifest["files"]
    assert {
        GRAPH_FILE,
        GRAPH_FILE + ".data",
        REQUEST_GRAPH_FILE,
        REQUEST_GRAPH_FILE + ".data",
        "vocab/item.parquet",
        "item_features.npy",
    } <= set(files)
    for name, digest in files.items():
        assert sha256_of(bundle / name) == digest


def test_corrupt_or_unlisted_files_are_refused(world: TinyWorld, tmp_path: Path) -> None:
    copy = tmp_path / "muse"
    shutil.copytree(world.bundle_root / "muse", copy)
    with open(copy / "item_features.npy", "r+b") as handle:
        handle.seek(-1, 2)
        last = handle.read(1)
        handle.seek(-1, 2)
        handle.write(bytes([last[0] ^ 1]))
    with pytest.raises(DataError, match="item_features.npy.*sha256"):
        read_manifest(copy, TaskKind.RANKING)
    shutil.copy(world.bundle_root / "muse" / "item_features.npy", copy / "item_features.npy")
    read_manifest(copy, TaskKind.RANKING)
    (copy / "stray.bin").write_bytes(b"x")
    with pytest.raises(DataError, match="stray.bin.*not listed"):
        read_manifest(copy, TaskKind.RANKING)


def test_failed_export_leaves_the_previous_bundle_untouched(
    world: TinyWorld, tmp_path: Path
) -> None:
    target = tmp_path / "bundle"
    target.mkdir()
    (target / MANIFEST_FILE).write_text(json.dumps({"previous": True}))
    soft = replace(
        world.din.config, search=SearchConfig(kind=SearchKind.SOFT_INNER_PRODUCT, top_k=4)
    )
    soft = replace(soft, esu=replace(soft.esu, mean_pool=replace(soft.esu.mean_pool, top_k=True)))
    model = tiny_model(world.dataset, soft)
    with pytest.raises(ValueError, match="soft_inner_product"):
        export_bundle(model, world.dataset, target)
    assert json.loads((target / MANIFEST_FILE).read_text()) == {"previous": True}
    assert sorted(path.name for path in tmp_path.iterdir()) == ["bundle"]


def test_the_manifest_names_its_task_and_readers_refuse_another_or_none(
    world: TinyWorld, tmp_path: Path
) -> None:
    copy = tmp_path / "muse"
    shutil.copytree(world.bundle_root / "muse", copy)
    manifest = read_manifest(copy, TaskKind.RANKING)
    assert manifest["task"] == "ranking" and manifest["bundle_format_version"] == 2
    path = copy / MANIFEST_FILE
    path.write_text(json.dumps({**manifest, "task": "item2item"}))
    with pytest.raises(DataError, match=re.escape(f"{path}: a bundle of task 'item2item'")):
        read_manifest(copy, TaskKind.RANKING)
    del manifest["task"]
    path.write_text(json.dumps(manifest))
    with pytest.raises(DataError, match=re.escape(f"{path}: the manifest names no task")):
        read_manifest(copy, TaskKind.RANKING, verify=False)
