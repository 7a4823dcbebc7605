"""Semantic item IDs: the token layout, collision tokens, RQ-KMeans, the map's files, the command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from muse.cli.main import main
from muse.conversational.semantic_ids.residual_kmeans import (
    fill_unused_codes,
    fit_residual_kmeans,
    nearest_codes,
)
from muse.conversational.semantic_ids.semantic_id_config import (
    QuantiserKind,
    RqVaeConfig,
    SemanticIdConfig,
)
from muse.conversational.semantic_ids.semantic_id_map import (
    ARRAYS_FILE,
    EOS,
    FIRST_CODE_TOKEN,
    MANIFEST_FILE,
    NO_ROW,
    PAD,
    SemanticIdMap,
    collision_indices,
)
from muse.conversational.semantic_ids.semantic_ids import build_semantic_ids
from muse.core.config_loader import config_from_dict, load_config
from muse.core.errors import ConfigError, DataError

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = ROOT / "configs/conversational/semantic_ids.toml"
SMALL = SemanticIdConfig(codebook_size=8, kmeans_iterations=10)


def _embeddings(count: int = 300, dim: int = 16, clusters: int = 12, seed: int = 0):
    """Raw ids (some negative) and clustered vectors, as real item embeddings are."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    vectors = centres[rng.integers(0, clusters, count)] + 0.4 * rng.normal(size=(count, dim))
    ids = rng.permutation(count).astype(np.int64) * 11 - 1000
    return ids, vectors.astype(np.float32)


def test_every_items_tokens_map_back_to_its_row() -> None:
    ids, vectors = _embeddings()
    id_map, _ = build_semantic_ids(ids, vectors, SMALL)
    tokens = id_map.tokens()
    assert tokens.shape == (300, 4) and tokens.dtype == np.int64
    assert np.unique(tokens, axis=0).shape[0] == 300  # unique IDs, the collision token included
    for level in range(id_map.levels + 1):
        first, stop = id_map.level_token_range(level)
        assert ((tokens[:, level] >= first) & (tokens[:, level] < stop)).all()
    assert id_map.level_token_range(0) == (FIRST_CODE_TOKEN, FIRST_CODE_TOKEN + 8)
    assert id_map.collision_offset == FIRST_CODE_TOKEN + 3 * 8
    assert id_map.vocab_size == 2 + 3 * 8 + id_map.max_collision + 1 > int(tokens.max())
    assert PAD == 0 and EOS == 1 and not np.isin(tokens, [PAD, EOS]).any()
    np.testing.assert_array_equal(id_map.rows_of_tokens(tokens), np.arange(300))
    assert id_map.row_of_tokens(list(tokens[17])) == 17
    np.testing.assert_array_equal(id_map.rows_of_items(ids[[5, 0, 299]]), [5, 0, 299])
    assert id_map.rows_of_items(np.array([123_456_789])).tolist() == [NO_ROW]
    # A sequence no item has: a pad, a level-0 token in level 1's place, the wrong length.
    assert id_map.row_of_tokens([PAD, *tokens[0, 1:]]) == NO_ROW
    assert id_map.row_of_tokens([tokens[0, 0], tokens[0, 0], *tokens[0, 2:]]) == NO_ROW
    assert id_map.row_of_tokens(tokens[0, :3]) == NO_ROW
    unused_collision = [*tokens[0, :3], id_map.collision_offset + id_map.max_collision + 1]
    assert id_map.row_of_tokens(unused_collision) == NO_ROW


def test_duplicate_embeddings_get_collision_tokens_in_row_order() -> None:
    ids, vectors = _embeddings()
    copies = [10, 50, 51, 200, 299]
    vectors[copies] = vectors[7] * np.array([1.0, 2.0, 0.5, 3.0, 1.0])[:, None]  # same direction
    id_map, stats = build_semantic_ids(ids, vectors, SMALL)
    group = [7, *copies]
    assert (id_map.codes[group] == id_map.codes[7]).all()
    assert id_map.collision[group].tolist() == [0, 1, 2, 3, 4, 5]
    assert id_map.max_collision >= 5 and stats.largest_collision_group >= 6
    assert stats.collision_rate >= 6 / 300 and stats.distinct_ids <= 300 - 5
    codes = np.array([[1, 2], [0, 0], [1, 2], [1, 2], [0, 0], [3, 1]])
    assert collision_indices(codes).tolist() == [0, 0, 1, 2, 1, 0]


def test_rq_kmeans_error_falls_with_each_level_and_ends_at_the_reconstruction() -> None:
    ids, vectors = _embeddings(count=500, dim=32)
    config = SemanticIdConfig(levels=4, codebook_size=16, kmeans_iterations=15)
    id_map, stats = build_semantic_ids(ids, vectors, config)
    errors = stats.level_reconstruction_mse
    assert len(errors) == 4 and (np.diff(errors) < 0).all()
    assert stats.reconstruction_mse == pytest.approx(errors[-1], rel=1e-5)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    rebuilt = sum(id_map.codebooks[level][id_map.codes[:, level]] for level in range(4))
    assert np.square(unit - rebuilt).mean() == pytest.approx(stats.reconstruction_mse, rel=1e-4)
    assert stats.relative_reconstruction_error == pytest.approx(
        stats.reconstruction_mse * 32, rel=1e-4
    )


def test_every_code_is_used_on_well_spread_data() -> None:
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(500, 16)).astype(np.float32)
    config = SemanticIdConfig(codebook_size=16, kmeans_iterations=10)
    _, stats = build_semantic_ids(np.arange(500), vectors, config)
    assert stats.codebook_usage == (1.0, 1.0, 1.0)
    assert all(8 < perplexity <= 16 for perplexity in stats.perplexity)


def test_the_collapse_guard_reseeds_unused_codes_on_distinct_points() -> None:
    rng = np.random.default_rng(0)
    distinct = rng.normal(size=(16, 8)).astype(np.float32)
    points = np.repeat(distinct, 20, axis=0)  # 16 distinct points, each 20 times
    centroids = np.concatenate([distinct[:4], np.full((12, 8), 50.0, np.float32)])  # 12 far away
    codes = nearest_codes(points, centroids)
    assert np.unique(codes).size == 4
    centroids, codes = fill_unused_codes(points, centroids, codes)
    assert np.unique(codes).size == 16  # exactly as many distinct points as codes: all used
    fitted = fit_residual_kmeans(points, 2, 16, 10, seed=0)
    assert np.unique(fitted.codes[:, 0]).size == 16
    assert fitted.level_errors[0] < 1e-10  # one code per distinct point: level 1 fits exactly


def test_fewer_distinct_items_than_codes_names_codebook_size() -> None:
    ids, vectors = _embeddings(count=100)
    vectors[20:] = vectors[np.arange(80) % 20]
    with pytest.raises(ConfigError, match="codebook_size = 32 .* got 20 "):
        build_semantic_ids(ids, vectors, SemanticIdConfig(codebook_size=32))
    with pytest.raises(ValueError, match="distinct"):
        build_semantic_ids(np.zeros(100, np.int64), vectors, SMALL)


@pytest.mark.parametrize("kind", list(QuantiserKind))
def test_the_same_seed_gives_the_same_ids(kind: QuantiserKind) -> None:
    ids, vectors = _embeddings(count=200)
    vae = RqVaeConfig(latent_width=8, hidden_widths=(32,), epochs=3, batch_size=64)
    config = SemanticIdConfig(kind=kind, codebook_size=8, kmeans_iterations=10, rq_vae=vae)
    first, first_stats = build_semantic_ids(ids, vectors, config)
    again, again_stats = build_semantic_ids(ids, vectors, config)
    np.testing.assert_array_equal(first.tokens(), again.tokens())
    assert first_stats == again_stats


def test_a_saved_map_loads_back_and_bad_files_are_data_errors(tmp_path: Path) -> None:
    ids, vectors = _embeddings()
    vectors[3] = vectors[4]
    id_map, _ = build_semantic_ids(ids, vectors, SMALL)
    out = tmp_path / "ids"
    manifest = id_map.save(out, extra={"quantiser": "rq_kmeans"})
    assert manifest["vocab_size"] == id_map.vocab_size and manifest["quantiser"] == "rq_kmeans"
    loaded = SemanticIdMap.load(out)
    for name in ("item_ids", "codes", "collision", "codebooks"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(id_map, name))
    assert (loaded.codebook_size, loaded.max_collision) == (8, id_map.max_collision)
    assert loaded.rows_of_tokens(id_map.tokens()).tolist() == list(range(300))

    manifest_path = out / MANIFEST_FILE
    original = manifest_path.read_text()
    for change, message in (
        ({"format": "muse.index"}, "expected 'muse.semantic_ids'"),
        ({"version": 99}, "format version 99"),
        ({"items": 12}, "holds 300 items"),
    ):
        manifest_path.write_text(json.dumps(json.loads(original) | change))
        with pytest.raises(DataError, match=message) as error:
            SemanticIdMap.load(out)
        assert str(error.value).startswith(str(out))
    manifest_path.write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        SemanticIdMap.load(out)
    manifest_path.write_text(original)
    (out / ARRAYS_FILE).write_bytes(b"corrupt")
    with pytest.raises(DataError, match=f"{ARRAYS_FILE}: sha256 differs"):
        SemanticIdMap.load(out)
    with pytest.raises(DataError, match="not a semantic ID map directory"):
        SemanticIdMap.load(tmp_path / "nowhere")


def test_config_is_read_from_toml_and_bad_values_name_the_field() -> None:
    config = load_config(SemanticIdConfig, DEFAULT_CONFIG, ["kind=rq_vae", "rq_vae.epochs=5"])
    assert config.kind is QuantiserKind.RQ_VAE and config.rq_vae.epochs == 5
    assert (config.levels, config.codebook_size, config.rq_vae.commitment_weight) == (3, 256, 0.25)
    assert load_config(SemanticIdConfig, DEFAULT_CONFIG) == SemanticIdConfig()
    for raw, field in (
        ({"kind": "pq"}, "kind"),
        ({"levels": 0}, "levels"),
        ({"codebook_size": 1}, "codebook_size"),
        ({"rq_vae": {"commitment_weight": -1.0}}, "rq_vae.commitment_weight"),
        ({"rq_vae": {"hidden_widths": [0]}}, "rq_vae.hidden_widths"),
        ({"rq_vae": {"dead_code_steps": -1}}, "rq_vae.dead_code_steps"),
    ):
        with pytest.raises(ConfigError, match=field):
            config_from_dict(SemanticIdConfig, raw, "test.toml")


def test_building_rq_kmeans_ids_loads_no_torch() -> None:
    code = (
        "import sys, numpy as np; "
        "from muse.conversational.semantic_ids.semantic_ids import build_semantic_ids; "
        "from muse.conversational.semantic_ids.semantic_id_config import SemanticIdConfig; "
        "rows = np.random.default_rng(0).normal(size=(64, 8)); "
        "build_semantic_ids(np.arange(64), rows, SemanticIdConfig(codebook_size=4)); "
        "print('torch' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT
    )
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize("kind", ["rq_kmeans", "rq_vae"])
def test_the_command_writes_the_map_and_its_stats(
    tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from muse.item2item.training.item_embeddings import ItemEmbeddingTable, write_item_embeddings

    ids, vectors = _embeddings(count=240)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    embeddings = tmp_path / "item_embeddings.parquet"
    write_item_embeddings(ItemEmbeddingTable(ids, unit), embeddings)
    out = tmp_path / "semantic_ids"
    args = ["conv", "ids", "--embeddings", str(embeddings), "--config", str(DEFAULT_CONFIG)]
    settings = [f"kind={kind}", "codebook_size=8", "rq_vae.epochs=3", "rq_vae.batch_size=64"]
    args += [part for setting in settings for part in ("--set", setting)]
    assert main([*args, "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}: 240 items → 3 × 8 codes" in printed and "collision rate" in printed
    id_map = SemanticIdMap.load(out)
    np.testing.assert_array_equal(np.sort(id_map.item_ids), np.sort(ids))
    stats = json.loads((out / "stats.json").read_text())
    assert stats["items"] == 240 and len(stats["codebook_usage"]) == 3
    assert set(stats) >= {"collision_rate", "largest_collision_group", "distinct_ids"}
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    assert manifest["config"]["kind"] == kind and manifest["config"]["codebook_size"] == 8

    code = main([*args, "--set", "codebook_size=1000", "--out", str(tmp_path / "too_many")])
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(error) == 1 and "codebook_size = 1000" in error[0]
    assert not (tmp_path / "too_many").exists()
