"""The generic event-log reader: no leakage, the cap, the time split, timestamps and side tables."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from features.dataset import Dataset, DatasetParts, write_dataset
from features.embedding_reader import EmbeddingSourceConfig
from features.event_log import (
    EventColumns,
    EventLogConfig,
    ItemTableConfig,
    UserTableConfig,
    read_event_log,
)
from features.history_cutoff import history_ends, history_ends_reference
from features.sequence_cap import cap_rows
from muse.core.ids import OOV_INDEX

TableWriter = Callable[..., Path]


def _random_log(
    seed: int, rows: int = 3000, users: int = 25, times: int = 40
) -> dict[str, np.ndarray]:
    """Few distinct timestamps, so many samples share a second with their user's behaviours."""
    rng = np.random.default_rng(seed)
    kinds = rng.choice(
        np.array(["impression", "click", "purchase", "view"]), size=rows, p=[0.3, 0.5, 0.1, 0.1]
    )
    labels = rng.integers(0, 2, size=rows)
    return {
        "user_id": rng.integers(-(2**62), 2**62, size=users)[rng.integers(0, users, size=rows)],
        "item_id": rng.integers(0, 200, size=rows) * 7919 - 500_000,
        "timestamp": 1_700_000_000 + rng.integers(0, times, size=rows) * 60,
        "event_type": kinds,
        "label": [
            int(label) if kind == "impression" else None
            for kind, label in zip(kinds, labels, strict=True)
        ],
    }


def _user_rows(parts: DatasetParts) -> dict[int, int]:
    return {int(user): row for row, user in enumerate(parts.users["user_id"].to_list())}


@pytest.mark.parametrize("clicked_samples_are_behaviours", [False, True])
def test_no_sample_sees_its_own_or_later_events(
    table_writer: TableWriter, clicked_samples_are_behaviours: bool
) -> None:
    log = _random_log(seed=3)
    path = table_writer("log.parquet", log)
    config = EventLogConfig(
        events=path, clicked_samples_are_behaviours=clicked_samples_are_behaviours
    )
    parts = read_event_log(config)
    raw = pl.DataFrame(log)
    behaviour_types = ["click", "purchase"]
    behaviours = raw.filter(
        pl.col("event_type").is_in(behaviour_types)
        | (
            pl.lit(clicked_samples_are_behaviours)
            & (pl.col("event_type") == "impression")
            & (pl.col("label") == 1)
        )
    )
    rows = _user_rows(parts)
    offsets, timestamps = parts.sequence_offsets, parts.sequence_timestamps
    checked_ties = 0
    for split, samples in parts.samples.items():
        for sample in samples.iter_rows(named=True):
            start, stop = offsets[sample["user_index"]], offsets[sample["user_index"] + 1]
            visible = timestamps[start : start + sample["history_end"]]
            hidden = timestamps[start + sample["history_end"] : stop]
            assert np.all(visible < sample["timestamp"]), split
            assert np.all(hidden >= sample["timestamp"]), split
            checked_ties += int(np.sum(hidden == sample["timestamp"]))
        # Independent count from the raw log: the user's behaviours strictly before the sample.
        user_ids = parts.users["user_id"].to_numpy()[samples["user_index"].to_numpy()]
        expected = [
            behaviours.filter((pl.col("user_id") == user) & (pl.col("timestamp") < time)).height
            for user, time in zip(user_ids[:200], samples["timestamp"].to_list()[:200], strict=True)
        ]
        assert samples["history_end"].to_list()[:200] == expected
    assert checked_ties > 50  # the log really has behaviours at a sample's own second
    assert len(rows) == raw["user_id"].n_unique()


def test_history_ends_fast_path_matches_reference() -> None:
    rng = np.random.default_rng(11)
    for case in range(30):
        users = int(rng.integers(1, 12))
        lengths = rng.integers(0, 30, size=users)
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        # Case 0..14 small times (packed key); 15.. huge spans force the rank fallback.
        high = 50 if case < 15 else 2**62
        timestamps = np.concatenate(
            [np.sort(rng.integers(-high, high, size=n)) for n in lengths]
        ).astype(np.int64)
        sample_users = rng.integers(0, users, size=40)
        pool = np.concatenate([timestamps, rng.integers(-high, high, size=20)])
        sample_times = rng.choice(pool, size=40)
        fast = history_ends(offsets, timestamps, sample_users, sample_times)
        assert (
            fast.tolist()
            == history_ends_reference(offsets, timestamps, sample_users, sample_times).tolist()
        )


def test_cap_keeps_the_most_recent_events(table_writer: TableWriter) -> None:
    times = np.arange(50) * 10
    log = {
        "user_id": [7] * 52,
        "item_id": [*range(100, 150), 999, 998],
        "timestamp": [*times, 5, 1000],
        "event_type": ["click"] * 50 + ["impression"] * 2,
        "label": [None] * 50 + [1, 0],
    }
    parts = read_event_log(
        EventLogConfig(
            events=table_writer("log.csv", log), max_sequence_length=10, test_fraction=0.0
        )
    )
    assert parts.sequence_offsets.tolist() == [0, 10]
    assert parts.sequence_timestamps.tolist() == times[-10:].tolist()
    raw_items = parts.vocabularies["item"].raw_of(parts.sequence_items)
    assert raw_items.tolist() == list(range(140, 150))
    # The early sample sees none of the kept (later) events; the late one sees all ten.
    assert parts.samples["train"]["history_end"].to_list() == [0, 10]
    keep, lengths = cap_rows(np.array([3, 0, 5]), 2)
    assert np.flatnonzero(keep).tolist() == [1, 2, 6, 7]
    assert lengths.tolist() == [2, 0, 2]


def test_time_split_by_fraction_and_by_start(table_writer: TableWriter) -> None:
    log = _random_log(seed=5, rows=2000, times=200)
    path = table_writer("log.parquet", log)
    parts = read_event_log(EventLogConfig(events=path, test_fraction=0.25))
    train, test = parts.samples["train"], parts.samples["test"]
    assert train["timestamp"].max() < test["timestamp"].min()
    total = train.height + test.height
    assert total == sum(kind == "impression" for kind in log["event_type"])
    assert 0.2 <= test.height / total <= 0.3
    assert parts.source["test_start"] == test["timestamp"].min()
    start = 1_700_000_000 + 150 * 60
    by_start = read_event_log(EventLogConfig(events=path, test_start=start))
    assert (
        by_start.samples["test"]["timestamp"].min()
        >= start
        > by_start.samples["train"]["timestamp"].max()
    )
    iso = read_event_log(EventLogConfig(events=path, test_start="2023-11-15T00:00:00"))
    assert iso.source["test_start"] == 1_700_006_400
    assert iso.samples["test"]["timestamp"].min() >= 1_700_006_400


def test_iso_string_timestamps_csv_matches_parquet_ints(table_writer: TableWriter) -> None:
    log = _random_log(seed=8, rows=500)
    from_ints = read_event_log(EventLogConfig(events=table_writer("ints.parquet", log)))
    iso = pl.from_epoch(pl.Series(log["timestamp"]), time_unit="s").dt.strftime("%Y-%m-%dT%H:%M:%S")
    strings = dict(log, timestamp=iso)
    from_strings = read_event_log(EventLogConfig(events=table_writer("strings.csv", strings)))
    assert np.array_equal(from_ints.sequence_timestamps, from_strings.sequence_timestamps)
    assert np.array_equal(from_ints.sequence_items, from_strings.sequence_items)
    for split in ("train", "test"):
        assert from_ints.samples[split].equals(from_strings.samples[split])


def test_item_table_user_table_and_embeddings(table_writer: TableWriter, tmp_path: Path) -> None:
    log = {
        "uid": [1, 1, 2, 2, 1],
        "iid": [10, 11, 10, 12, 12],
        "ts": [1, 2, 3, 4, 5],
        "kind": ["buy", "buy", "buy", "show", "show"],
        "clicked": [None, None, None, 1, 0],
    }
    items = table_writer(
        "items.parquet", {"iid": [10, 11, 13], "cat": [500, 600, 500], "brand": [9, None, 9]}
    )
    users = table_writer("users.csv", {"uid": [2, 3], "age": [30, 40]})
    np.save(tmp_path / "vectors.npy", np.eye(3, 4, dtype=np.float32))
    np.save(tmp_path / "vector_ids.npy", np.array([11, 10, 14]))
    config = EventLogConfig(
        events=table_writer("log.parquet", log),
        columns=EventColumns(
            user_id="uid", item_id="iid", timestamp="ts", event_type="kind", label="clicked"
        ),
        behaviour_event_types=("buy",),
        sample_event_types=("show",),
        test_fraction=0.0,
        items=ItemTableConfig(path=items, item_id="iid", category="cat", attributes=("brand",)),
        users=UserTableConfig(path=users, user_id="uid", features=("age",)),
        embeddings=EmbeddingSourceConfig(
            path=tmp_path / "vectors.npy", ids_path=tmp_path / "vector_ids.npy"
        ),
    )
    dataset = Dataset(write_dataset(read_event_log(config), tmp_path / "dataset"))
    item_vocabulary = dataset.vocabulary("item")
    assert item_vocabulary.raw_ids.tolist() == [10, 11, 12, 13, 14]
    assert dataset.manifest["item_attributes"] == ["brand"]
    assert dataset.manifest["profile_features"] == ["profile_age"]
    # User 1: buys 10 (t1), 11 (t2); user 2: buys 10 (t3).
    assert dataset.sequence_offsets.tolist() == [0, 2, 3]
    categories = dataset.vocabulary("category").raw_of(dataset.sequence_categories)
    assert categories.tolist() == [500, 600, 500]
    items = dataset.items()
    assert items["category_index"].to_list()[2] == OOV_INDEX  # item 12 has no table row
    assert items["brand_index"].to_list()[1] == OOV_INDEX  # a null attribute
    ages = dataset.vocabulary("profile_age").raw_of(dataset.users()["profile_age"].to_numpy())
    assert ages.tolist() == [-1, 30]  # user 1 has no user-table row: OOV
    assert dataset.users()["profile_age"].to_list()[0] == OOV_INDEX
    assert dataset.samples("train")["history_end"].to_list() == [1, 2]
    assert dataset.samples("train")["label"].to_list() == [1, 0]
    table = np.asarray(dataset.item_embeddings)
    assert table.dtype == np.float16 and table.shape == (7, 4)
    assert table[item_vocabulary.lookup(np.array([10]))[0]].tolist() == [0, 1, 0, 0]
    assert table[item_vocabulary.lookup(np.array([12]))[0]].tolist() == [0, 0, 0, 0]


def test_log_without_event_types_or_labels(table_writer: TableWriter) -> None:
    log = {
        "user_id": [1, 1, 1, 2],
        "item_id": [5, 6, 7, 5],
        "timestamp": [1, 2, 3, 1],
        "label": [1, 0, 1, 0],
    }
    path = table_writer("log.parquet", log)
    impressions_only = read_event_log(
        EventLogConfig(
            events=path,
            columns=EventColumns(event_type=""),
            clicked_samples_are_behaviours=True,
            test_fraction=0.0,
        )
    )
    # Every row is a sample; clicked ones (items 5 at t1, 7 at t3) also form the sequence.
    assert impressions_only.sequence_offsets.tolist() == [0, 2, 2]
    assert impressions_only.samples["train"]["history_end"].to_list() == [0, 0, 1, 1]
    sequences_only = read_event_log(
        EventLogConfig(
            events=table_writer("clicks.parquet", dict(log, event_type=["click"] * 4)),
            columns=EventColumns(label=""),
        )
    )
    assert sequences_only.sequence_offsets.tolist() == [0, 3, 4]
    assert sequences_only.samples["train"].height == sequences_only.samples["test"].height == 0
    assert sequences_only.item_embeddings.shape == (5, 0)


def test_directory_of_parts_equals_one_file(table_writer: TableWriter, tmp_path: Path) -> None:
    log = pl.DataFrame(_random_log(seed=2, rows=600))
    whole = table_writer("whole.parquet", log.to_dict(as_series=False))
    (tmp_path / "parts").mkdir()
    for part in range(3):
        log.slice(part * 200, 200).write_parquet(tmp_path / "parts" / f"part-{part}.parquet")
    one = read_event_log(EventLogConfig(events=whole))
    many = read_event_log(EventLogConfig(events=tmp_path / "parts"))
    assert np.array_equal(one.sequence_items, many.sequence_items)
    assert one.samples["test"].equals(many.samples["test"])


def test_config_rejects_overlapping_types_and_bad_fraction(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="both behaviours and samples"):
        EventLogConfig(
            events=tmp_path, behaviour_event_types=("click",), sample_event_types=("click",)
        )
    with pytest.raises(ValueError, match="test_fraction"):
        EventLogConfig(events=tmp_path, test_fraction=1.0)


def test_event_types_as_categoricals_or_integer_codes(table_writer: TableWriter) -> None:
    log = {
        "user_id": [1, 1, 1],
        "item_id": [5, 6, 7],
        "timestamp": [1, 2, 3],
        "label": [None, None, 1],
    }
    as_strings = read_event_log(
        EventLogConfig(
            events=table_writer("s.parquet", dict(log, event_type=["click", "view", "impression"])),
            test_fraction=0.0,
        )
    )
    categorical = pl.Series(["click", "view", "impression"], dtype=pl.Categorical)
    as_categories = read_event_log(
        EventLogConfig(
            events=table_writer("c.parquet", dict(log, event_type=categorical)), test_fraction=0.0
        )
    )
    as_codes = read_event_log(
        EventLogConfig(
            events=table_writer("i.parquet", dict(log, event_type=[2, 3, 1])),
            behaviour_event_types=("2",),
            sample_event_types=("1",),
            test_fraction=0.0,
        )
    )
    for parts in (as_strings, as_categories, as_codes):
        assert parts.sequence_offsets.tolist() == [0, 1]
        assert parts.vocabularies["item"].raw_of(parts.sequence_items).tolist() == [5]
        assert parts.samples["train"]["history_end"].to_list() == [1]
