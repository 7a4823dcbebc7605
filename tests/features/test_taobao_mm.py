"""The Taobao-MM reader: the schema fixture loads and its values round-trip into the dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from features.dataset import Dataset, write_dataset
from features.taobao_mm import TaobaoMMConfig, read_taobao_mm
from muse.core.errors import DataError
from muse.core.ids import OOV_INDEX
from tests.features.data_files import TAOBAO_FIXTURE


def _raw(name: str, directory: Path = TAOBAO_FIXTURE) -> pl.DataFrame:
    return pl.read_parquet(directory / name)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    target = tmp_path_factory.mktemp("taobao") / "dataset"
    return Dataset(write_dataset(read_taobao_mm(TAOBAO_FIXTURE), target))


def test_fixture_counts_and_manifest(dataset: Dataset) -> None:
    # 10 train + 10 test feature rows, then cold-start rows: 2 train sample users, 1 test user.
    assert dataset.num_users == 23
    assert dataset.manifest["num_samples"] == {"train": 10, "test": 10}
    assert dataset.manifest["num_events"] == 19 * 1000 + 351
    assert dataset.embedding_dim == 128 and dataset.item_embeddings.dtype == np.int8
    assert dataset.embedding_scale == pytest.approx(1 / 127)
    assert dataset.item_attributes == ["city", "province"]
    assert dataset.profile_features == [f"profile_130_{i}" for i in range(1, 6)]
    # Item vocabulary = item features ∪ embedding ids ∪ sample targets (all disjoint in the fixture).
    assert dataset.vocabulary_size("item") == 10 + 10 + 10 + 10 + 2


def test_samples_round_trip_ids_and_labels(dataset: Dataset) -> None:
    for split in ("train", "test"):
        raw = _raw(f"{split}_samples.parquet")
        samples = dataset.samples(split)
        items = dataset.vocabulary("item").raw_of(samples["item_index"].to_numpy())
        assert items.tolist() == raw["205"].to_list()
        assert samples["label"].to_list() == [one_hot[1] for one_hot in raw["label_0"].to_list()]
        users = dataset.users()["user_id"].to_numpy()[samples["user_index"].to_numpy()]
        assert users.tolist() == raw["129_1"].to_list()
        assert samples["timestamp"].to_list() == list(range(raw.height))
    assert dataset.samples("test")["label"].to_list()[2] == 1


def test_cold_start_users_get_empty_history_and_oov_profile(dataset: Dataset) -> None:
    # The fixture's sample users have no feature rows, so every sample points at a cold-start row.
    users = dataset.users()
    for split in ("train", "test"):
        samples = dataset.samples(split)
        rows = np.unique(samples["user_index"].to_numpy())
        assert np.all(rows >= 20)
        assert np.all(np.diff(dataset.sequence_offsets)[rows] == 0)
        assert samples["history_end"].to_list() == [0] * samples.height
        assert np.all(users["profile_130_3"].to_numpy()[rows] == OOV_INDEX)


def test_history_round_trips_in_order_with_positions(dataset: Dataset) -> None:
    train_users = _raw("train_user_features.parquet")
    test_users = _raw("test_user_features.parquet")
    category_vocabulary = dataset.vocabulary("category")
    item_vocabulary = dataset.vocabulary("item")
    for row, raw_row in ((0, train_users.row(0, named=True)), (15, test_users.row(5, named=True))):
        items, categories = dataset.history(row)
        assert categories.size == len(raw_row["151_2_180"])
        assert category_vocabulary.raw_of(categories).tolist() == raw_row["151_2_180"]
        assert items.tolist() == item_vocabulary.lookup(np.array(raw_row["150_2_180"])).tolist()
        start, stop = dataset.sequence_offsets[row], dataset.sequence_offsets[row + 1]
        assert dataset.sequence_timestamps[start:stop].tolist() == list(range(stop - start))
    assert dataset.sequence_offsets[16] - dataset.sequence_offsets[15] == 351
    assert dataset.users()["user_id"][15] == test_users["129_1"][5]
    profile = dataset.vocabulary("profile_130_1").raw_of(
        dataset.users()["profile_130_1"].to_numpy()[:10]
    )
    assert profile.tolist() == train_users["130_1"].to_list()


def test_embedding_rows_and_item_attributes_round_trip(dataset: Dataset) -> None:
    embeddings = _raw("scl_embedding_int8_p90.parquet")
    index = dataset.vocabulary("item").lookup(embeddings["205"].to_numpy())
    assert np.array_equal(
        dataset.item_embeddings[index[3]], np.array(embeddings["205_c"][3].to_list(), np.int8)
    )
    assert np.all(dataset.item_embeddings[:2] == 0)
    features = _raw("item_features.parquet")
    items = dataset.items()
    assert items["item_index"].to_list() == list(range(2, dataset.vocabulary_size("item")))
    row = items.filter(pl.col("item_id") == features["205"][4]).row(0, named=True)
    assert (
        dataset.vocabulary("category").raw_of(np.array([row["category_index"]]))[0]
        == features["206"][4]
    )
    assert dataset.vocabulary("city").raw_of(np.array([row["city_index"]]))[0] == features["213"][4]
    assert (
        dataset.vocabulary("province").raw_of(np.array([row["province_index"]]))[0]
        == features["214"][4]
    )
    # Sample targets without item features have OOV attributes.
    target = items.filter(pl.col("item_id") == _raw("train_samples.parquet")["205"][0]).row(
        0, named=True
    )
    assert target["category_index"] == OOV_INDEX


def test_cap_keeps_most_recent_and_batches_do_not_matter() -> None:
    capped = read_taobao_mm(TAOBAO_FIXTURE, TaobaoMMConfig(batch_rows=3, max_sequence_length=100))
    lengths = np.diff(capped.sequence_offsets)
    assert lengths[:20].tolist() == [100] * 20
    raw = _raw("train_user_features.parquet").row(1, named=True)
    categories = capped.vocabularies["category"].raw_of(capped.sequence_categories[100:200])
    assert categories.tolist() == raw["151_2_180"][-100:]
    assert capped.sequence_timestamps[100:200].tolist() == list(range(900, 1000))
    whole = read_taobao_mm(TAOBAO_FIXTURE)
    batched = read_taobao_mm(TAOBAO_FIXTURE, TaobaoMMConfig(batch_rows=3))
    assert np.array_equal(whole.sequence_items, batched.sequence_items)
    assert np.array_equal(whole.sequence_categories, batched.sequence_categories)


def test_same_raw_user_owns_a_train_row_and_a_test_row(taobao_copy: Path) -> None:
    # Give the first train and test feature rows the sample users, one raw user on both sides.
    shared_user = _raw("train_samples.parquet")["129_1"][0]
    for name in ("train_user_features.parquet", "test_user_features.parquet"):
        frame = _raw(name, taobao_copy)
        ids = frame["129_1"].to_list()
        ids[0] = shared_user
        frame.with_columns(pl.Series("129_1", ids)).write_parquet(taobao_copy / name)
    samples = _raw("test_samples.parquet", taobao_copy).with_columns(
        pl.lit(shared_user).alias("129_1")
    )
    samples.write_parquet(taobao_copy / "test_samples.parquet")
    parts = read_taobao_mm(taobao_copy)
    users = parts.users["user_id"].to_numpy()
    assert np.flatnonzero(users == shared_user).tolist() == [0, 10]
    train = parts.samples["train"]
    assert train["user_index"].to_list()[:3] == [0, 0, 0]
    assert train["history_end"].to_list()[:3] == [1000, 1000, 1000]
    assert parts.samples["test"]["user_index"].to_list() == [10] * 10


def test_click_probability_is_carried_when_present(taobao_copy: Path, tmp_path: Path) -> None:
    probability = np.linspace(0.05, 0.5, 10)
    pl.DataFrame({"probability": probability}).write_parquet(
        taobao_copy / "test_click_probability.parquet"
    )
    dataset = Dataset(write_dataset(read_taobao_mm(taobao_copy), tmp_path / "dataset"))
    assert np.allclose(dataset.click_probability(), probability)
    pl.DataFrame({"probability": probability[:9]}).write_parquet(
        taobao_copy / "test_click_probability.parquet"
    )
    with pytest.raises(DataError, match="holds 9 rows but test_samples.parquet holds 10"):
        read_taobao_mm(taobao_copy)


def test_fixture_without_probability_has_none(dataset: Dataset) -> None:
    assert dataset.click_probability() is None
