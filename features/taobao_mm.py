"""Taobao-MM raw schema (the MUSE paper's public dataset) → the internal dataset format.

Reads the six parquet files described in the fixture README (samples, user features, item
features, int8 SCL embeddings). What is unusual here:

- Taobao-MM has no timestamps: behaviour timestamps are positions in the user's list (0 = oldest)
  and a sample's timestamp is its row number in its samples file.
- Train samples point to rows built from ``train_user_features``, test samples to rows from
  ``test_user_features``, so one raw user may own two rows. A sample whose user has no feature
  row gets an empty-history row (cold start) with OOV profile features.
- A sample sees its user's whole row (``history_end`` = row length): Taobao-MM built every
  sequence from behaviour before its samples.
- Behaviour items outside the item vocabulary (item features ∪ embedding ids ∪ sample targets)
  map to OOV, as in the released data where only ~35.5M of 243M history items are kept.
- User-feature files are read in batches of ``batch_rows`` users (two passes: categories, then
  the behaviour arrays), so million-user files with 1,000-long lists never sit in RAM at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

from features.attribute_table import AttributeTable, read_attribute_table
from features.dataset import DatasetParts
from features.embedding_reader import (
    EmbeddingSourceConfig,
    EmbeddingStorage,
    read_embedding_ids,
    read_item_embeddings,
)
from features.input_table import (
    ColumnKind,
    collect_checked,
    require_columns,
    require_rows_without_nulls,
    require_unique,
    scan_table,
)
from features.sequence_cap import cap_rows
from features.vocabulary import Vocabulary, sorted_unique
from muse.core.config_loader import config_to_dict
from muse.core.errors import DataError
from muse.core.ids import FIRST_ID_INDEX, OOV_INDEX

SPLITS = ("train", "test")
USER_ID = "129_1"
ITEM_ID = "205"
CATEGORY = "206"
ITEM_ATTRIBUTES = {"city": "213", "province": "214"}
PROFILE_COLUMNS = ("130_1", "130_2", "130_3", "130_4", "130_5")
HISTORY_ITEMS = "150_2_180"
HISTORY_CATEGORIES = "151_2_180"
LABEL = "label_0"
EMBEDDING = "205_c"
ITEM_FEATURES_FILE = "item_features.parquet"
EMBEDDING_FILE = "scl_embedding_int8_p90.parquet"
CLICK_PROBABILITY_FILE = "test_click_probability.parquet"
REQUIRED_FILES = (
    "train_samples.parquet",
    "test_samples.parquet",
    "train_user_features.parquet",
    "test_user_features.parquet",
    ITEM_FEATURES_FILE,
    EMBEDDING_FILE,
)
TAOBAO_INT8_SCALE = 1.0 / 127


@dataclass(frozen=True)
class TaobaoMMConfig:
    """Reader settings: users per read batch, the lifelong-sequence cap (most recent kept), and
    optionally another source for the item embedding table.

    ``embeddings`` (e.g. ``--set embeddings.path=runs/x/item_embeddings.parquet``) replaces the
    vectors of ``scl_embedding_int8_p90.parquet`` with those of another file (parquet ``item_id`` +
    ``embedding`` list, or .npy + ``ids_path``): the item vocabulary is still built from the raw
    files, so datasets read with different embeddings share every index; vocabulary items the
    file lacks get a zero row (cosine 0), file ids outside the vocabulary are skipped.
    """

    batch_rows: int = 4096
    max_sequence_length: int = 100_000
    embeddings: EmbeddingSourceConfig | None = None

    def __post_init__(self) -> None:
        if self.batch_rows < 1:
            raise ValueError("batch_rows must be at least 1")
        if self.max_sequence_length < 1:
            raise ValueError("max_sequence_length must be at least 1")


def profile_feature_name(column: str) -> str:
    """Internal name of a Taobao-MM profile column: ``130_1`` → ``profile_130_1``."""
    return f"profile_{column}"


class _UserFile(NamedTuple):
    path: Path
    user_ids: np.ndarray
    profiles: pl.DataFrame
    lengths: np.ndarray
    categories: np.ndarray


def read_taobao_mm(
    input_dir: str | Path, config: TaobaoMMConfig | None = None, progress: bool = False
) -> DatasetParts:
    """Read a Taobao-MM directory (six raw-schema parquet files) into ``DatasetParts``.

    If the directory also holds ``test_click_probability.parquet`` (column ``probability``,
    row-aligned with ``test_samples.parquet``, written by the synthetic generator) it is carried
    into the dataset. Raises DataError naming file, column and problem on any bad input.
    """
    config = config or TaobaoMMConfig()
    input_dir = Path(input_dir)
    if not input_dir.is_dir():
        raise DataError(input_dir, "input directory not found")
    for name in REQUIRED_FILES:
        if not (input_dir / name).is_file():
            raise DataError(
                input_dir / name, "file not found (a Taobao-MM directory holds six files)"
            )

    samples = {split: _read_samples(input_dir / f"{split}_samples.parquet") for split in SPLITS}
    item_table = read_attribute_table(
        input_dir / ITEM_FEATURES_FILE, ITEM_ID, {"category": CATEGORY, **ITEM_ATTRIBUTES}, "item"
    )
    embedding_source = EmbeddingSourceConfig(
        path=input_dir / EMBEDDING_FILE,
        id_column=ITEM_ID,
        vector_column=EMBEDDING,
        storage=EmbeddingStorage.INT8,
        int8_scale=TAOBAO_INT8_SCALE,
        batch_rows=max(config.batch_rows, 65_536),
    )
    item_vocabulary = Vocabulary.from_ids(
        item_table.ids,
        read_embedding_ids(embedding_source),
        *[frame["item_id"].to_numpy() for frame in samples.values()],
    )
    user_files = [
        _scan_user_file(input_dir / f"{split}_user_features.parquet", config) for split in SPLITS
    ]
    vocabularies = {
        "item": item_vocabulary,
        "category": item_table.vocabulary("category", *[f.categories for f in user_files]),
        **{name: item_table.vocabulary(name) for name in ITEM_ATTRIBUTES},
        **{
            profile_feature_name(column): Vocabulary.from_ids(
                *[f.profiles[column].drop_nulls().to_numpy() for f in user_files]
            )
            for column in PROFILE_COLUMNS
        },
    }

    # User rows: train feature rows, test feature rows, then cold-start rows per split.
    sample_rows: dict[str, np.ndarray] = {}
    row_user_ids = [f.user_ids for f in user_files]
    row_lengths = [np.minimum(f.lengths, config.max_sequence_length) for f in user_files]
    row_profiles = [_profile_indices(f.profiles, vocabularies) for f in user_files]
    next_row = sum(f.user_ids.size for f in user_files)
    base = 0
    for split, user_file in zip(SPLITS, user_files, strict=True):
        rows, cold_ids = _rows_of_sample_users(
            samples[split]["user_id"].to_numpy(), user_file.user_ids, base, next_row
        )
        sample_rows[split] = rows
        base += user_file.user_ids.size
        next_row += cold_ids.size
        row_user_ids.append(cold_ids)
        row_lengths.append(np.zeros(cold_ids.size, dtype=np.int64))
        row_profiles.append(
            {name: np.full(cold_ids.size, OOV_INDEX, dtype=np.int32) for name in row_profiles[0]}
        )

    lengths = np.concatenate(row_lengths)
    offsets = np.zeros(lengths.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    total_events = int(offsets[-1])
    sequence_items = np.empty(total_events, dtype=np.int32)
    sequence_categories = np.empty(total_events, dtype=np.int32)
    sequence_timestamps = np.empty(total_events, dtype=np.int64)
    cursor = 0
    for user_file in user_files:
        cursor = _fill_sequences(
            user_file,
            config,
            vocabularies,
            (sequence_items, sequence_categories, sequence_timestamps),
            cursor,
            progress,
        )

    users = pl.DataFrame(
        {
            "user_index": np.arange(lengths.size, dtype=np.int32),
            "user_id": np.concatenate(row_user_ids).astype(np.int64),
            **{
                name: np.concatenate([profiles[name] for profiles in row_profiles])
                for name in row_profiles[0]
            },
        }
    )
    sample_frames = {
        split: pl.DataFrame(
            {
                "user_index": sample_rows[split].astype(np.int32),
                "item_index": item_vocabulary.lookup(frame["item_id"].to_numpy()),
                "label": frame["label"].to_numpy(),
                "history_end": lengths[sample_rows[split]],
                "timestamp": np.arange(frame.height, dtype=np.int64),
            }
        )
        for split, frame in samples.items()
    }
    override = config.embeddings
    if override is not None:
        override_ids = read_embedding_ids(override)
        embeddings = read_item_embeddings(override, item_vocabulary)
        known = item_vocabulary.lookup(override_ids) != OOV_INDEX
        embedding_record = {
            "path": str(override.path),
            "dim": int(embeddings.table.shape[1]),
            "dtype": str(embeddings.table.dtype),
            "vocabulary_items_covered": int(np.unique(override_ids[known]).size),
            "vocabulary_items": len(item_vocabulary) - FIRST_ID_INDEX,
            "ids_outside_vocabulary": int((~known).sum()),
        }
    else:
        embeddings = read_item_embeddings(embedding_source, item_vocabulary)
        embedding_record = {"path": str(embedding_source.path)}
    extra_files = {}
    probability_path = input_dir / CLICK_PROBABILITY_FILE
    if probability_path.is_file():
        extra_files[CLICK_PROBABILITY_FILE] = _read_click_probability(
            probability_path, samples["test"].height
        )
    return DatasetParts(
        vocabularies=vocabularies,
        items=_items_frame(item_table, vocabularies),
        item_embeddings=embeddings.table,
        sequence_offsets=offsets,
        sequence_items=sequence_items,
        sequence_categories=sequence_categories,
        sequence_timestamps=sequence_timestamps,
        users=users,
        samples=sample_frames,
        embedding_scale=embeddings.scale,
        item_attributes=tuple(ITEM_ATTRIBUTES),
        profile_features=tuple(profile_feature_name(c) for c in PROFILE_COLUMNS),
        extra_files=extra_files,
        source={
            "reader": "taobao-mm",
            "input_dir": str(input_dir),
            "config": config_to_dict(config),
            "embeddings": embedding_record,
        },
    )


def _read_samples(path: Path) -> pl.DataFrame:
    """(user_id, item_id, label) of a samples file; label is taken from the one-hot ``label_0``."""
    frame = scan_table(path)
    require_columns(
        frame,
        path,
        {LABEL: ColumnKind.INTEGER_LIST, USER_ID: ColumnKind.INTEGER, ITEM_ID: ColumnKind.INTEGER},
    )
    require_rows_without_nulls(frame, path, [USER_ID, ITEM_ID, LABEL])
    label = pl.col(LABEL)
    no_click = label.list.get(0, null_on_oob=True).fill_null(-1)
    click = label.list.get(1, null_on_oob=True).fill_null(-1)
    valid = (
        (label.list.len() == 2)
        & no_click.is_in([0, 1])
        & click.is_in([0, 1])
        & (no_click + click == 1)
    )
    table = collect_checked(
        frame.select(
            pl.col(USER_ID).cast(pl.Int64).alias("user_id"),
            pl.col(ITEM_ID).cast(pl.Int64).alias("item_id"),
            click.cast(pl.Int8).alias("label"),
            valid.alias("valid"),
        ),
        path,
    )
    invalid = np.flatnonzero(~table["valid"].to_numpy())
    if invalid.size:
        row = int(invalid[0])
        value = pl.read_parquet(path, columns=[LABEL])[LABEL][row].to_list()
        raise DataError(
            path,
            f"label outside {{0,1}}: {invalid.size} row(s) are not one-hot [1, 0] / [0, 1], "
            f"e.g. row {row} = {value}",
            column=LABEL,
        )
    return table.drop("valid")


def _scan_user_file(path: Path, config: TaobaoMMConfig) -> _UserFile:
    """First pass over a user-feature file: ids, profiles, list lengths and distinct categories."""
    frame = scan_table(path)
    require_columns(
        frame,
        path,
        {
            USER_ID: ColumnKind.INTEGER,
            **dict.fromkeys(PROFILE_COLUMNS, ColumnKind.INTEGER),
            HISTORY_ITEMS: ColumnKind.INTEGER_LIST,
            HISTORY_CATEGORIES: ColumnKind.INTEGER_LIST,
        },
    )
    require_rows_without_nulls(frame, path, [USER_ID, HISTORY_ITEMS, HISTORY_CATEGORIES])
    profiles = collect_checked(
        frame.select(
            pl.col(USER_ID).cast(pl.Int64), *[pl.col(c).cast(pl.Int64) for c in PROFILE_COLUMNS]
        ),
        path,
    )
    user_ids = profiles[USER_ID].to_numpy()
    require_unique(user_ids, path, USER_ID, "user")
    lengths = []
    distinct: list[np.ndarray] = []
    for batch in _batches(path, [HISTORY_CATEGORIES], config.batch_rows):
        values, row_lengths = _flat_list(batch.column(0), path, HISTORY_CATEGORIES)
        lengths.append(row_lengths)
        distinct.append(sorted_unique(values))
    return _UserFile(
        path=path,
        user_ids=user_ids,
        profiles=profiles.drop(USER_ID),
        lengths=np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int64),
        categories=sorted_unique(np.concatenate(distinct))
        if distinct
        else np.zeros(0, dtype=np.int64),
    )


def _fill_sequences(
    user_file: _UserFile,
    config: TaobaoMMConfig,
    vocabularies: dict[str, Vocabulary],
    outputs: tuple[np.ndarray, np.ndarray, np.ndarray],
    cursor: int,
    progress: bool,
) -> int:
    """Second pass: write each row's capped behaviour arrays at ``cursor``; returns the new cursor."""
    sequence_items, sequence_categories, sequence_timestamps = outputs
    bar = tqdm(
        total=user_file.user_ids.size,
        unit="users",
        desc=f"read {user_file.path.name}",
        disable=not progress,
    )
    first_row = 0
    for batch in _batches(user_file.path, [HISTORY_ITEMS, HISTORY_CATEGORIES], config.batch_rows):
        items, item_lengths = _flat_list(batch.column(0), user_file.path, HISTORY_ITEMS)
        categories, category_lengths = _flat_list(
            batch.column(1), user_file.path, HISTORY_CATEGORIES
        )
        mismatch = np.flatnonzero(item_lengths != category_lengths)
        if mismatch.size:
            row = first_row + int(mismatch[0])
            raise DataError(
                user_file.path,
                f"row {row} has {int(item_lengths[mismatch[0]])} behaviour items but "
                f"{int(category_lengths[mismatch[0]])} categories",
                column=HISTORY_CATEGORIES,
            )
        keep, capped = cap_rows(item_lengths, config.max_sequence_length)
        starts = np.cumsum(item_lengths) - item_lengths
        positions = np.arange(items.size, dtype=np.int64) - np.repeat(starts, item_lengths)
        stop = cursor + int(capped.sum())
        sequence_items[cursor:stop] = vocabularies["item"].lookup(items[keep])
        sequence_categories[cursor:stop] = vocabularies["category"].lookup(categories[keep])
        sequence_timestamps[cursor:stop] = positions[keep]
        cursor = stop
        first_row += batch.num_rows
        bar.update(batch.num_rows)
    bar.close()
    return cursor


def _batches(path: Path, columns: list[str], batch_rows: int) -> Iterator[pa.RecordBatch]:
    try:
        parquet = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as error:
        raise DataError(path, f"cannot read: {error}") from error
    return parquet.iter_batches(batch_size=batch_rows, columns=columns)


def _flat_list(lists: pa.Array, path: Path, column: str) -> tuple[np.ndarray, np.ndarray]:
    """Flat int64 values and per-row lengths of a list column batch (no nulls allowed)."""
    if lists.null_count:
        raise DataError(path, f"{lists.null_count} null list(s)", column=column)
    values = lists.flatten()
    if values.null_count:
        raise DataError(path, f"{values.null_count} null id(s) inside the lists", column=column)
    lengths = pc.list_value_length(lists).to_numpy(zero_copy_only=False).astype(np.int64)
    return values.to_numpy(zero_copy_only=False).astype(np.int64, copy=False), lengths


def _profile_indices(
    profiles: pl.DataFrame, vocabularies: dict[str, Vocabulary]
) -> dict[str, np.ndarray]:
    result = {}
    for column in PROFILE_COLUMNS:
        name = profile_feature_name(column)
        indices = vocabularies[name].lookup(profiles[column].fill_null(0).to_numpy())
        indices[profiles[column].is_null().to_numpy()] = OOV_INDEX
        result[name] = indices
    return result


def _rows_of_sample_users(
    sample_users: np.ndarray, file_users: np.ndarray, base: int, next_row: int
) -> tuple[np.ndarray, np.ndarray]:
    """User row of every sample; users without a feature row get new rows from ``next_row`` on."""
    order = np.argsort(file_users, kind="stable")
    sorted_users = file_users[order]
    position = np.minimum(
        np.searchsorted(sorted_users, sample_users), max(sorted_users.size - 1, 0)
    )
    found = (
        sorted_users[position] == sample_users
        if sorted_users.size
        else np.zeros(sample_users.size, bool)
    )
    rows = np.empty(sample_users.size, dtype=np.int64)
    rows[found] = base + order[position[found]]
    cold_ids = sorted_unique(sample_users[~found])
    rows[~found] = next_row + np.searchsorted(cold_ids, sample_users[~found])
    return rows, cold_ids


def _items_frame(item_table: AttributeTable, vocabularies: dict[str, Vocabulary]) -> pl.DataFrame:
    item_vocabulary = vocabularies["item"]
    frame = {
        "item_index": np.arange(2, len(item_vocabulary), dtype=np.int32),
        "item_id": item_vocabulary.raw_ids,
    }
    for name in ("category", *ITEM_ATTRIBUTES):
        aligned = item_table.aligned_indices(name, vocabularies[name], item_vocabulary)
        frame[f"{name}_index"] = aligned[2:]
    return pl.DataFrame(frame)


def _read_click_probability(path: Path, test_rows: int) -> pl.DataFrame:
    frame = scan_table(path)
    require_columns(frame, path, {"probability": ColumnKind.NUMBER})
    rows = require_rows_without_nulls(frame, path, ["probability"])
    if rows != test_rows:
        raise DataError(
            path,
            f"holds {rows} rows but test_samples.parquet holds {test_rows}",
            column="probability",
        )
    return collect_checked(frame.select(pl.col("probability").cast(pl.Float64)), path)
