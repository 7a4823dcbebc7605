"""The test dataset factory: raw ids round-trip through the written dataset; OOV as a reader maps it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from features.dataset import Dataset
from muse.core.ids import OOV_INDEX
from tests.dataset_factory import RawDataset, Samples

ITEMS = [40, -7, 12, 2**40]  # deliberately unsorted, one negative
CATEGORIES = [300, 100, 300, 200]
COLOURS = [-1, 5, 5, 9]
VECTORS = np.array([[1, 2], [3, 4], [5, 6], [7, 8]], dtype=np.float16)
UNKNOWN = 555  # neither an item nor a category


def _raw() -> RawDataset:
    return RawDataset(
        item_ids=ITEMS,
        item_categories=CATEGORIES,
        item_attributes={"colour": COLOURS},
        item_embeddings=VECTORS,
        embedding_scale=0.5,
        user_ids=[8, 9, 8],  # raw user 8 owns rows 0 and 2
        histories=[[12, UNKNOWN, -7], [], [2**40]],
        history_timestamps=[[10, 20, 30], [], [5]],
        profiles={"age": [3, 4, 99]},  # 99 is outside the given list: OOV
        samples={
            "train": Samples(users=[0, 2, 1], items=[40, UNKNOWN, -7], labels=[1, 0, 1]),
            "test": Samples(users=[0], items=[12], labels=[0], history_end=[2], timestamps=[77]),
        },
        extra_files={"test_click_probability.parquet": pl.DataFrame({"probability": [0.25]})},
        vocabularies={"profile_age": [1, 2, 3, 4]},  # ages 1 and 2 keep their rows unused
    )


def _raw_of(dataset: Dataset, vocabulary: str, index: object) -> list[int | None]:
    """Raw ids of ``index``; OOV as None."""
    raw = dataset.vocabulary(vocabulary).raw_of(np.asarray(index))
    return [None if i == OOV_INDEX else int(r) for i, r in zip(np.asarray(index), raw, strict=True)]


def test_raw_ids_round_trip_through_the_written_dataset(tmp_path: Path) -> None:
    dataset = _raw().write(tmp_path / "ds")
    items = dataset.items()
    assert items["item_index"].to_list() == [2, 3, 4, 5]  # ascending raw ids
    assert items["item_id"].to_list() == sorted(ITEMS)
    by_item = dict(zip(ITEMS, zip(CATEGORIES, COLOURS, VECTORS.tolist(), strict=True), strict=True))
    for row in items.iter_rows(named=True):
        category, colour, vector = by_item[row["item_id"]]
        assert _raw_of(dataset, "category", [row["category_index"]]) == [category]
        assert _raw_of(dataset, "colour", [row["colour_index"]]) == [colour]
        assert dataset.item_embeddings[row["item_index"]].tolist() == vector
    assert not dataset.item_embeddings[:2].any() and dataset.embedding_scale == 0.5
    assert dataset.item_embeddings.dtype == np.float16

    histories = [dataset.history(user) for user in range(dataset.num_users)]
    assert [_raw_of(dataset, "item", items) for items, _ in histories] == [
        [12, None, -7],
        [],
        [2**40],
    ]
    # A behaviour carries its item's category; the unknown item's is OOV.
    assert [_raw_of(dataset, "category", c) for _, c in histories] == [[300, None, 100], [], [200]]
    assert dataset.sequence_timestamps.tolist() == [10, 20, 30, 5]

    users = dataset.users()
    assert users["user_id"].to_list() == [8, 9, 8]
    assert dataset.profile_features == ["profile_age"] and dataset.item_attributes == ["colour"]
    assert _raw_of(dataset, "profile_age", users["profile_age"].to_numpy()) == [3, 4, None]
    assert dataset.vocabulary_size("profile_age") == 6

    train = dataset.samples("train")
    assert train["user_index"].to_list() == [0, 2, 1]
    assert _raw_of(dataset, "item", train["item_index"].to_numpy()) == [40, None, -7]
    assert train["label"].to_list() == [1, 0, 1]
    assert train["history_end"].to_list() == [3, 1, 0]  # default: the whole history
    assert train["timestamp"].to_list() == [0, 1, 2]  # default: row order
    test = dataset.samples("test")
    assert test["history_end"].to_list() == [2] and test["timestamp"].to_list() == [77]
    click_probability = dataset.click_probability()
    assert click_probability is not None and click_probability.tolist() == [0.25]


def test_defaults_and_given_categories() -> None:
    parts = RawDataset(
        item_ids=[1, 2],
        user_ids=[5],
        histories=[[2, 3]],
        history_categories=[[70, 80]],  # as Taobao-MM ships them: known even for an OOV item
    ).parts()
    assert parts.item_embeddings.shape == (4, 0) and parts.item_embeddings.dtype == np.int8
    assert parts.items["category_index"].to_list() == [OOV_INDEX, OOV_INDEX]
    assert parts.sequence_items.tolist() == [3, OOV_INDEX]
    assert parts.sequence_categories.tolist() == [2, 3]
    assert parts.sequence_timestamps.tolist() == [0, 1]
    assert parts.samples == {} and parts.item_attributes == parts.profile_features == ()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"item_ids": [1, 1]}, "twice"),
        ({"histories": [[1]]}, "1 histories for 2 users"),
        ({"vocabularies": {"colour": [1]}}, "colour"),
        ({"vocabularies": {"item": [1]}}, "lacks"),
        ({"item_embeddings": np.zeros((3, 2), np.int8)}, "one row per item"),
        ({"samples": {"train": Samples(users=[0], items=[1], labels=[1], history_end=[2])}}, "history_end"),
        ({"samples": {"train": Samples(users=[2], items=[1], labels=[1])}}, "user row"),
        ({"samples": {"train": Samples(users=[0], items=[1], labels=[2])}}, "labels"),
    ],
)
def test_inconsistent_input_is_named(change: dict, message: str) -> None:
    settings: dict = {"item_ids": [1, 2], "user_ids": [5, 6], "histories": [[1], []], **change}
    with pytest.raises(ValueError, match=message):
        RawDataset(**settings).parts()
