"""The synthetic lifelong benchmark: Taobao-MM schema, determinism, and the planted structure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow.parquet as pq
import pytest
from threadpoolctl import threadpool_limits

from features.synthetic import CONFIG_FILE, SynthSummary, generate_synthetic
from features.synthetic_catalogue import AliasSampler
from features.synthetic_config import (
    CatalogueConfig,
    ClickModelConfig,
    HistoryConfig,
    ImpressionConfig,
    SynthConfig,
)
from features.synthetic_ids import PROFILE_BASE, hashed_ids
from features.synthetic_world import SyntheticWorld
from muse.core.config_loader import load_config
from muse.core.errors import ConfigError
from muse.core.metrics import gauc

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "taobao_mm_demo"
RAW_FILES = (
    "train_samples.parquet",
    "test_samples.parquet",
    "train_user_features.parquet",
    "test_user_features.parquet",
    "item_features.parquet",
    "scl_embedding_int8_p90.parquet",
)

TINY = SynthConfig(
    seed=7,
    num_users=70,
    chunk_users=32,
    catalogue=CatalogueConfig(num_items=3_000, num_topics=60, num_categories=20, embedding_dim=32),
    history=HistoryConfig(length=200, test_time_gap=20, short_term_window=20),
    impressions=ImpressionConfig(train_per_user=4, test_per_user=3),
    click=ClickModelConfig(calibration_users=100, short_term_recent=20),
)
# Big enough for the planted structure to show through label noise, still a couple of seconds.
MEDIUM = SynthConfig(
    seed=11,
    num_users=600,
    catalogue=CatalogueConfig(num_items=20_000, num_topics=500),
    impressions=ImpressionConfig(train_per_user=1, test_per_user=15),
    click=ClickModelConfig(calibration_users=300),
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SynthSummary]:
    out = tmp_path_factory.mktemp("synth") / "tiny"
    return out, generate_synthetic(TINY, out, progress=False)


@pytest.fixture(scope="module")
def medium(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SynthSummary]:
    out = tmp_path_factory.mktemp("synth") / "medium"
    return out, generate_synthetic(MEDIUM, out, progress=False)


def test_schema_matches_the_taobao_mm_fixture(tiny: tuple[Path, SynthSummary]) -> None:
    out, _ = tiny
    for name in RAW_FILES:
        expected = pq.read_schema(FIXTURE / name)
        actual = pq.read_schema(out / name)
        assert actual.names == expected.names, name
        for column in expected.names:
            assert actual.field(column).type == expected.field(column).type, (name, column)
    probability = pq.read_table(out / "test_click_probability.parquet")
    assert probability.schema.names == ["probability"]
    assert str(probability.schema.field("probability").type) == "double"
    assert probability.num_rows == pq.read_metadata(out / "test_samples.parquet").num_rows
    assert load_config(SynthConfig, out / CONFIG_FILE) == TINY


def test_contents_are_consistent(tiny: tuple[Path, SynthSummary]) -> None:
    out, summary = tiny
    items = pq.read_table(out / "item_features.parquet").to_pydict()
    item_ids = np.array(items["205"])
    assert np.unique(item_ids).size == item_ids.size == TINY.catalogue.num_items
    assert (item_ids < 0).any() and (item_ids > 0).any()  # hashed ids exercise negative raw ids
    category_of = dict(zip(items["205"], items["206"], strict=True))
    assert len(set(items["206"])) <= TINY.catalogue.num_categories
    embeddings = pq.read_table(out / "scl_embedding_int8_p90.parquet")
    vectors = np.array(embeddings.column("205_c").to_pylist(), dtype=np.int64)
    assert vectors.shape == (TINY.catalogue.num_items, TINY.catalogue.embedding_dim)
    assert np.abs(vectors).max() <= 127 and np.abs(vectors).max() > 30
    for split, per_user in (("train", 4), ("test", 3)):
        users = pq.read_table(out / f"{split}_user_features.parquet").to_pydict()
        assert len(users["129_1"]) == TINY.num_users
        assert {len(history) for history in users["150_2_180"]} == {TINY.history.length}
        for history, categories in zip(users["150_2_180"][:5], users["151_2_180"][:5], strict=True):
            assert [category_of[item] for item in history] == categories
        samples = pq.read_table(out / f"{split}_samples.parquet").to_pydict()
        assert len(samples["205"]) == TINY.num_users * per_user
        assert set(samples["129_1"]) == set(users["129_1"])
        assert set(samples["205"]) <= set(items["205"])
        assert all(label in ([1, 0], [0, 1]) for label in samples["label_0"])
    train_users = pq.read_table(out / "train_user_features.parquet").to_pydict()
    test_users = pq.read_table(out / "test_user_features.parquet").to_pydict()
    assert (
        train_users["129_1"] == test_users["129_1"] and train_users["130_1"] == test_users["130_1"]
    )
    # The test snapshot is `test_time_gap` behaviours later: the overlap is shared, shifted.
    gap = TINY.history.test_time_gap
    assert train_users["150_2_180"][0][gap:-30] == test_users["150_2_180"][0][: -gap - 30]
    assert summary.num_events == 2 * TINY.num_users * TINY.history.length


def test_same_seed_gives_identical_files_and_another_seed_differs(
    tiny: tuple[Path, SynthSummary], tmp_path: Path
) -> None:
    out, summary = tiny
    again = generate_synthetic(TINY, tmp_path / "again", progress=False)
    for name in (*RAW_FILES, "test_click_probability.parquet", CONFIG_FILE):
        assert (out / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name
    assert again.oracle_gauc == summary.oracle_gauc
    other_seed = SynthConfig(**{**TINY.__dict__, "seed": 8})
    generate_synthetic(other_seed, tmp_path / "other", progress=False)
    for name in (
        "train_samples.parquet",
        "test_user_features.parquet",
        "scl_embedding_int8_p90.parquet",
    ):
        assert not pq.read_table(out / name).equals(pq.read_table(tmp_path / "other" / name)), name


def test_positive_rate_and_oracle_quality(medium: tuple[Path, SynthSummary]) -> None:
    _, summary = medium
    assert 0.09 < summary.test_positive_rate < 0.16
    assert 0.09 < summary.train_positive_rate < 0.16
    assert summary.oracle_gauc > 0.82 and summary.oracle_auc > 0.82
    # What a last-50 model can see falls far short; a category search sees part of the signal.
    assert summary.last_50_oracle_gauc < summary.oracle_gauc - 0.12
    assert summary.last_50_oracle_gauc + 0.05 < summary.same_category_oracle_gauc
    assert summary.same_category_oracle_gauc < summary.oracle_gauc - 0.03


class _TestView(NamedTuple):
    """The test split read back from the files; items as row positions in item_features."""

    user_ids: np.ndarray  # (S,) samples are grouped by user, `per_user` each
    labels: np.ndarray  # (S,)
    probability: np.ndarray  # (S,)
    targets: np.ndarray  # (S,)
    profiles: np.ndarray  # (S, 5) raw profile ids
    cosines: np.ndarray  # (S, L) target vs each behaviour of the user's test history
    same_category: np.ndarray  # (S, L) bool


@pytest.fixture(scope="module")
def medium_view(medium: tuple[Path, SynthSummary]) -> _TestView:
    out, _ = medium
    per_user = MEDIUM.impressions.test_per_user
    items = pq.read_table(out / "item_features.parquet")
    item_ids = items.column("205").to_numpy()
    categories = items.column("206").to_numpy()
    order = np.argsort(item_ids)

    def positions(raw: np.ndarray) -> np.ndarray:
        return order[np.searchsorted(item_ids, raw, sorter=order)]

    embedding_table = pq.read_table(out / "scl_embedding_int8_p90.parquet")
    vectors = np.zeros((item_ids.size, MEDIUM.catalogue.embedding_dim), dtype=np.float32)
    vectors[positions(embedding_table.column("205").to_numpy())] = np.array(
        embedding_table.column("205_c").to_pylist(), dtype=np.float32
    )
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    samples = pq.read_table(out / "test_samples.parquet")
    users = pq.read_table(out / "test_user_features.parquet")
    sample_users = samples.column("129_1").to_numpy()
    assert (sample_users.reshape(-1, per_user) == users.column("129_1").to_numpy()[:, None]).all()
    histories = positions(np.array(users.column("150_2_180").to_pylist(), dtype=np.int64))  # (U, L)
    targets = positions(samples.column("205").to_numpy())
    user_targets = targets.reshape(-1, per_user)
    with threadpool_limits(limits=1, user_api="blas"):
        cosines = np.concatenate(
            [
                np.matmul(
                    vectors[user_targets[start : start + 50]],
                    vectors[histories[start : start + 50]].transpose(0, 2, 1),
                )
                for start in range(0, histories.shape[0], 50)
            ]
        ).reshape(targets.size, -1)
    same_category = (
        categories[np.repeat(histories, per_user, axis=0)] == categories[targets][:, None]
    )
    profiles = np.stack([users.column(f"130_{i}").to_numpy() for i in range(1, 6)], axis=1)
    return _TestView(
        user_ids=sample_users,
        labels=np.array(samples.column("label_0").to_pylist())[:, 1],
        probability=pq.read_table(out / "test_click_probability.parquet")
        .column("probability")
        .to_numpy(),
        targets=targets,
        profiles=np.repeat(profiles, per_user, axis=0),
        cosines=cosines,
        same_category=same_category,
    )


def test_true_probability_is_the_documented_formula_of_the_files(medium_view: _TestView) -> None:
    view = medium_view
    world = SyntheticWorld(MEDIUM)
    profile_indices = np.empty(view.profiles.shape, dtype=np.int64)
    for f, size in enumerate(MEDIUM.profile_cardinalities):
        ids = hashed_ids(MEDIUM.seed, PROFILE_BASE + f, np.arange(size))
        order = np.argsort(ids)
        profile_indices[:, f] = order[np.searchsorted(ids, view.profiles[:, f], sorter=order)]
        assert (ids[profile_indices[:, f]] == view.profiles[:, f]).all()
    logits = world.click_model.logits_without_intercept(
        world.click_model.match_counts(view.cosines),
        world.catalogue.popularity_score[view.targets],
        world.click_model.user_bias(profile_indices),
        profile_indices[:, 0],
        world.catalogue.category[view.targets],
    )
    np.testing.assert_allclose(
        world.click_model.probability(logits), view.probability, rtol=1e-5, atol=1e-7
    )


def test_long_term_signal_needs_the_whole_history_and_multimodal_search(
    medium_view: _TestView,
) -> None:
    view = medium_view

    def clicks_gauc(scores: np.ndarray) -> float:
        return gauc(view.user_ids, view.labels, scores)

    whole_history = clicks_gauc(view.cosines.max(axis=1))
    last_50 = clicks_gauc(view.cosines[:, -50:].max(axis=1))
    category_overlap = clicks_gauc(view.same_category.sum(axis=1))
    assert whole_history > last_50 + 0.08
    assert whole_history > category_overlap + 0.03
    # A soft count of close behaviours (what a SimTier histogram of the top-50 cosines carries)
    # beats the single best match, and the same count within the target's category only.
    soft_count = np.clip((view.cosines - 0.4) / 0.2, 0, 1)
    assert clicks_gauc(soft_count.sum(axis=1)) > whole_history + 0.03
    same_category_count = (soft_count * view.same_category).sum(axis=1)
    assert clicks_gauc(soft_count.sum(axis=1)) > clicks_gauc(same_category_count) + 0.02


def test_long_histories_are_generated_in_bounded_chunks(tmp_path: Path) -> None:
    config = SynthConfig(
        seed=3,
        num_users=5,
        max_chunk_events=45_000,
        catalogue=CatalogueConfig(
            num_items=2_000, num_topics=40, num_categories=10, embedding_dim=16
        ),
        history=HistoryConfig(length=20_000, test_time_gap=500),
        impressions=ImpressionConfig(train_per_user=2, test_per_user=2),
        click=ClickModelConfig(calibration_users=3),
    )
    assert config.users_per_chunk() == 2
    summary = generate_synthetic(config, tmp_path / "long", progress=False)
    users = pq.read_table(tmp_path / "long" / "test_user_features.parquet")
    assert (
        users.num_rows == 5
        and pq.read_metadata(tmp_path / "long" / "test_user_features.parquet").num_row_groups == 3
    )
    assert {len(history) for history in users.column("150_2_180").to_pylist()} == {20_000}
    assert summary.num_test_samples == 10


def test_alias_sampler_matches_its_weights() -> None:
    weights = np.array([0.0, 1.0, 2.0, 7.0, 0.5])
    draws = AliasSampler(weights).draw(np.random.default_rng(0), 200_000)
    frequencies = np.bincount(draws, minlength=weights.size) / draws.size
    np.testing.assert_allclose(frequencies, weights / weights.sum(), atol=0.005)
    assert frequencies[0] == 0.0


def test_hashed_ids_are_distinct_and_signed() -> None:
    ids = hashed_ids(42, 1, np.arange(100_000))
    assert np.unique(ids).size == ids.size
    assert (ids < 0).mean() == pytest.approx(0.5, abs=0.02)
    assert not np.array_equal(ids, hashed_ids(43, 1, np.arange(100_000)))


def test_bad_configs_are_rejected(tmp_path: Path) -> None:
    path = ROOT / "configs/data/synth_default.toml"
    with pytest.raises(ConfigError, match="categories_per_topic"):
        load_config(SynthConfig, path, ["catalogue.categories_per_topic=1000"])
    with pytest.raises(ConfigError, match="unknown key"):
        load_config(SynthConfig, path, ["history.lenght=10"])
    with pytest.raises(ConfigError, match="profile_cardinalities"):
        load_config(SynthConfig, path, ["profile_cardinalities=[2, 3]"])
    assert load_config(SynthConfig, ROOT / "configs/data/synth_1m.toml").num_users == 40_000


def test_cli_writes_the_dataset_without_loading_torch(tmp_path: Path) -> None:
    code = (
        "import sys; from muse.cli.main import main; "
        f"code = main(['data', 'synth', '--out', {str(tmp_path / 'cli')!r}, '--no-progress', "
        "'--set', 'num_users=40', '--set', 'catalogue.num_items=2000', '--set', 'catalogue.num_topics=50', "
        "'--set', 'history.length=100', '--set', 'click.calibration_users=40']); "
        "assert 'torch' not in sys.modules, 'torch was imported'; sys.exit(code)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "oracle on test: AUC" in result.stdout and "GAUC" in result.stdout
    assert (tmp_path / "cli" / "test_click_probability.parquet").is_file()
    assert not [
        path for path in tmp_path.iterdir() if path.name.startswith(".")
    ]  # no temp leftovers


def test_output_converts_with_the_taobao_mm_reader(
    tiny: tuple[Path, SynthSummary], tmp_path: Path
) -> None:
    taobao_mm = pytest.importorskip("features.taobao_mm")
    from features.dataset import Dataset, write_dataset

    out, summary = tiny
    write_dataset(taobao_mm.read_taobao_mm(out), tmp_path / "dataset")
    dataset = Dataset(tmp_path / "dataset")
    assert dataset.manifest["num_samples"] == {
        "train": summary.num_train_samples,
        "test": summary.num_test_samples,
    }
    assert dataset.manifest["num_events"] == summary.num_events
    assert dataset.embedding_dim == TINY.catalogue.embedding_dim
    probability = pq.read_table(tmp_path / "dataset" / "test_click_probability.parquet").column(
        "probability"
    )
    np.testing.assert_array_equal(
        probability.to_numpy(),
        pq.read_table(out / "test_click_probability.parquet").column("probability").to_numpy(),
    )
