"""Generic event logs (parquet or CSV) → lifelong sequences and leakage-free labelled samples.

Which rows are what (docs/data-format.md, "Generic event logs"):

- a **behaviour** is a row whose event type is in ``behaviour_event_types`` (default click,
  purchase); behaviours form each user's lifelong sequence, oldest first, capped at the most
  recent ``max_sequence_length`` events;
- a **sample** is a row whose event type is in ``sample_event_types`` (default impression); it
  must carry a label 0 or 1. With ``clicked_samples_are_behaviours`` a clicked sample is also a
  behaviour (for logs that record clicks only as labelled impressions). Without an event-type
  column every row is a sample; without a label column there are no samples;
- a sample's history is every behaviour of its user strictly before its timestamp (an event at the
  same second is not visible), found for all samples at once by ``features.history_cutoff``;
- samples at or after the cut-off time are the test split (``test_start``, else the
  ``1 - test_fraction`` quantile of sample times).

The log is read with lazy polars scans (streaming engine), once to validate and once each for
behaviours and samples; everything after that is vectorised numpy over int32/int64 arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
from tqdm import tqdm

from features.attribute_table import AttributeTable, read_attribute_table
from features.dataset import DatasetParts
from features.dense_ids import dense_ids
from features.embedding_reader import (
    EmbeddingSourceConfig,
    read_embedding_ids,
    read_item_embeddings,
)
from features.history_cutoff import history_ends
from features.input_table import ColumnKind, collect_checked, require_columns, scan_table
from features.sequence_cap import cap_rows
from features.user_time_key import user_time_key
from features.vocabulary import Vocabulary
from muse.core.config_loader import config_to_dict
from muse.core.errors import DataError
from muse.core.ids import FIRST_ID_INDEX, OOV_INDEX

TIMESTAMP = "timestamp"


@dataclass(frozen=True)
class EventColumns:
    """Column names in the event log; an empty ``event_type`` or ``label`` means the log has none."""

    user_id: str = "user_id"
    item_id: str = "item_id"
    timestamp: str = "timestamp"
    event_type: str = "event_type"
    label: str = "label"


@dataclass(frozen=True)
class ItemTableConfig:
    """Optional item table: one row per item id, its category and other categorical attributes."""

    path: Path
    item_id: str = "item_id"
    category: str = "category_id"
    attributes: tuple[str, ...] = ()


@dataclass(frozen=True)
class UserTableConfig:
    """Optional user table: one row per user id with categorical profile features."""

    path: Path
    user_id: str = "user_id"
    features: tuple[str, ...] = ()


@dataclass(frozen=True)
class EventLogConfig:
    """How to turn an event log into the internal dataset (see the module docstring).

    ``events`` is a parquet/CSV file or a directory of them. Timestamps may be integers (kept as
    given; seconds recommended), dates, datetimes or strings (parsed with ``timestamp_format``,
    or inferred ISO 8601; naive times are UTC) and are stored as epoch seconds. ``test_start``
    (an integer or a date string) fixes the split time; otherwise the last ``test_fraction`` of
    samples by time are the test split.
    """

    events: Path
    columns: EventColumns = field(default_factory=EventColumns)
    behaviour_event_types: tuple[str, ...] = ("click", "purchase")
    sample_event_types: tuple[str, ...] = ("impression",)
    clicked_samples_are_behaviours: bool = False
    max_sequence_length: int = 100_000
    timestamp_format: str | None = None
    test_start: int | str | None = None
    test_fraction: float = 0.1
    items: ItemTableConfig | None = None
    users: UserTableConfig | None = None
    embeddings: EmbeddingSourceConfig | None = None

    def __post_init__(self) -> None:
        if self.max_sequence_length < 1:
            raise ValueError("max_sequence_length must be at least 1")
        if not 0.0 <= self.test_fraction < 1.0:
            raise ValueError("test_fraction must be in [0, 1)")
        overlap = set(self.behaviour_event_types) & set(self.sample_event_types)
        if overlap:
            raise ValueError(f"event types {sorted(overlap)} cannot be both behaviours and samples")


def read_event_log(config: EventLogConfig, progress: bool = False) -> DatasetParts:
    """Build ``DatasetParts`` from an event log; raises DataError naming file, column and problem."""
    path = Path(config.events)
    stages = tqdm(total=6, unit="stage", desc="event log", disable=not progress)

    stages.set_description("validate events")
    frame, schema = _open_events(config)
    columns = config.columns
    timestamp_seconds = _timestamp_seconds(
        columns.timestamp, schema[columns.timestamp], config.timestamp_format
    )
    is_behaviour, is_sample = _row_kinds(config, schema.get(columns.event_type, pl.String()))
    _validate(frame, path, config, timestamp_seconds, is_behaviour, is_sample)
    stages.update()

    stages.set_description("collect behaviours")
    behaviour_filter = is_behaviour
    if config.clicked_samples_are_behaviours and columns.label:
        behaviour_filter = behaviour_filter | (
            is_sample & (pl.col(columns.label).cast(pl.Int64) == 1)
        )
    behaviours = collect_checked(
        frame.filter(behaviour_filter).select(
            pl.col(columns.user_id).cast(pl.Int64).alias("user_id"),
            pl.col(columns.item_id).cast(pl.Int64).alias("item_id"),
            timestamp_seconds.alias(TIMESTAMP),
        ),
        path,
    )
    samples = _collect_samples(frame, path, config, timestamp_seconds, is_sample)
    stages.update()

    stages.set_description("vocabularies")
    item_table = _read_item_table(config.items)
    embedding_ids = [read_embedding_ids(config.embeddings)] if config.embeddings is not None else []
    num_behaviours, num_samples = behaviours.height, samples.height
    # One sort each gives the vocabulary and every event's index (ids only in side tables last).
    items = dense_ids(
        np.concatenate(
            [
                behaviours["item_id"].to_numpy(),
                samples["item_id"].to_numpy(),
                *([item_table.ids] if item_table is not None else []),
                *embedding_ids,
            ]
        )
    )
    item_vocabulary = Vocabulary(items.distinct)
    item_index = (items.position[: num_behaviours + num_samples] + FIRST_ID_INDEX).astype(np.int32)
    user_ids, user_index = dense_ids(
        np.concatenate([behaviours["user_id"].to_numpy(), samples["user_id"].to_numpy()])
    )
    del items
    vocabularies = {"item": item_vocabulary}
    if item_table is not None:
        for name in item_table.values.columns:
            vocabularies[name] = item_table.vocabulary(name)
    else:
        vocabularies["category"] = Vocabulary.from_ids()
    stages.update()

    stages.set_description("sequences")
    timestamps = behaviours[TIMESTAMP].to_numpy()
    del behaviours
    order = _user_time_order(user_index[:num_behaviours], timestamps, user_ids.size)
    counts = np.bincount(user_index[:num_behaviours], minlength=user_ids.size)
    keep, lengths = cap_rows(counts, config.max_sequence_length)
    order = order[keep]
    offsets = np.zeros(user_ids.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    sequence_items = item_index[:num_behaviours][order]
    sequence_timestamps = timestamps[order]
    del order, timestamps
    if item_table is not None:
        category_of_item = item_table.aligned_indices(
            "category", vocabularies["category"], item_vocabulary
        )
        sequence_categories = category_of_item[sequence_items]
    else:
        sequence_categories = np.full(sequence_items.size, OOV_INDEX, dtype=np.int32)
    stages.update()

    stages.set_description("samples")
    sample_users = user_index[num_behaviours:]
    sample_timestamps = samples[TIMESTAMP].to_numpy()
    all_samples = pl.DataFrame(
        {
            "user_index": sample_users.astype(np.int32),
            "item_index": item_index[num_behaviours:],
            "label": samples["label"].to_numpy().astype(np.int8),
            "history_end": history_ends(
                offsets, sequence_timestamps, sample_users, sample_timestamps
            ),
            TIMESTAMP: sample_timestamps,
        }
    ).sort(TIMESTAMP, maintain_order=True)
    del item_index, user_index
    cutoff = _split_time(config, sample_timestamps, path)
    split_samples = {
        "train": all_samples.filter(pl.col(TIMESTAMP) < cutoff),
        "test": all_samples.filter(pl.col(TIMESTAMP) >= cutoff),
    }
    users, profile_vocabularies = _users_frame(user_ids, config.users)
    vocabularies.update(profile_vocabularies)
    stages.update()

    stages.set_description("embeddings")
    if config.embeddings is not None:
        embeddings = read_item_embeddings(config.embeddings, item_vocabulary)
        table, scale = embeddings.table, embeddings.scale
    else:
        table, scale = np.zeros((len(item_vocabulary), 0), dtype=np.float16), 1.0
    stages.update()
    stages.close()

    return DatasetParts(
        vocabularies=vocabularies,
        items=_items_frame(item_vocabulary, item_table, vocabularies),
        item_embeddings=table,
        sequence_offsets=offsets,
        sequence_items=sequence_items,
        sequence_categories=sequence_categories,
        sequence_timestamps=sequence_timestamps,
        users=users,
        samples=split_samples,
        embedding_scale=scale,
        item_attributes=tuple(config.items.attributes) if config.items is not None else (),
        profile_features=tuple(profile_vocabularies),
        source={
            "reader": "event-log",
            "config": config_to_dict(config),
            "test_start": _plain(cutoff),
        },
    )


def _user_time_order(user_index: np.ndarray, timestamps: np.ndarray, num_users: int) -> np.ndarray:
    """Stable permutation sorting events by (user, time): equal times keep their order in the log."""
    if timestamps.size == 0:
        return np.zeros(0, dtype=np.int64)
    packing = user_time_key(num_users, int(timestamps.min()), int(timestamps.max()))
    if packing is None:
        return np.lexsort((timestamps, user_index))  # stable
    # One multi-threaded sort of a packed int64 beats a two-key sort several times over.
    keys = pl.DataFrame({"key": packing.pack(user_index, timestamps)})
    return keys.select(pl.arg_sort_by("key", maintain_order=True))["key"].to_numpy()


def _open_events(config: EventLogConfig) -> tuple[pl.LazyFrame, pl.Schema]:
    """The lazy event frame and its schema, with the configured columns checked."""
    path = Path(config.events)
    columns = config.columns
    frame = scan_table(path)
    required = {
        columns.user_id: ColumnKind.INTEGER,
        columns.item_id: ColumnKind.INTEGER,
        columns.timestamp: ColumnKind.TIMESTAMP,
    }
    if columns.event_type:
        required[columns.event_type] = ColumnKind.ANY
    if columns.label:
        required[columns.label] = ColumnKind.NUMBER
    return frame, require_columns(frame, path, required)


def _timestamp_seconds(column: str, dtype: pl.DataType, timestamp_format: str | None) -> pl.Expr:
    raw = pl.col(column)
    if dtype.is_integer():
        return raw.cast(pl.Int64)
    if dtype == pl.Date:
        return raw.cast(pl.Datetime).dt.epoch("s")
    if isinstance(dtype, pl.Datetime):
        return raw.dt.epoch("s")
    return raw.str.to_datetime(format=timestamp_format, strict=False).dt.epoch("s")


def _type_is_in(column: str, dtype: pl.DataType, types: tuple[str, ...]) -> pl.Expr:
    """Whether the row's event type is one of ``types`` (strings; integer codes are compared as ints)."""
    if dtype.is_integer():
        codes = [int(name) for name in types if name.lstrip("-").isdigit()]
        return pl.col(column).is_in(codes).fill_null(False)
    if dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum):
        # Comparing categoricals directly is ~5x cheaper than casting 50M rows to strings.
        return pl.col(column).is_in(list(types)).fill_null(False)
    return pl.col(column).cast(pl.String).is_in(list(types)).fill_null(False)


def _row_kinds(config: EventLogConfig, event_type_dtype: pl.DataType) -> tuple[pl.Expr, pl.Expr]:
    """Boolean expressions: is the row a behaviour, is it a sample."""
    columns = config.columns
    if not columns.event_type:
        return pl.lit(False), pl.lit(bool(columns.label))
    is_behaviour = _type_is_in(columns.event_type, event_type_dtype, config.behaviour_event_types)
    is_sample = _type_is_in(columns.event_type, event_type_dtype, config.sample_event_types)
    if not columns.label:
        is_sample = pl.lit(False)
    return is_behaviour, is_sample


def _validate(
    frame: pl.LazyFrame,
    path: Path,
    config: EventLogConfig,
    timestamp_seconds: pl.Expr,
    is_behaviour: pl.Expr,
    is_sample: pl.Expr,
) -> None:
    """One streaming pass: empty log, null ids or times, unparseable times, labels outside {0,1}."""
    columns = config.columns
    used = is_behaviour | is_sample
    checks = [
        pl.len().alias("rows"),
        used.sum().alias("used"),
        (used & pl.col(columns.user_id).is_null()).sum().alias(columns.user_id),
        (used & pl.col(columns.item_id).is_null()).sum().alias(columns.item_id),
        (used & pl.col(columns.timestamp).is_null()).sum().alias(columns.timestamp),
        (used & pl.col(columns.timestamp).is_not_null() & timestamp_seconds.is_null())
        .sum()
        .alias("unparsed"),
    ]
    bad_label = None
    if columns.label:
        label = pl.col(columns.label)
        bad_label = is_sample & (
            label.is_null() | ~label.cast(pl.Float64).is_in([0.0, 1.0]).fill_null(False)
        )
        checks.append(bad_label.sum().alias("bad_labels"))
    counts = collect_checked(frame.select(checks), path).row(0, named=True)
    if counts["rows"] == 0:
        raise DataError(path, "file is empty (no rows)")
    for column in (columns.user_id, columns.item_id, columns.timestamp):
        if counts[column]:
            raise DataError(
                path, f"{counts[column]} null value(s) in behaviour or sample rows", column=column
            )
    if counts["unparsed"]:
        example = _first_value(
            frame.filter(used & timestamp_seconds.is_null()), columns.timestamp, path
        )
        raise DataError(
            path,
            f"{counts['unparsed']} timestamp(s) cannot be parsed, e.g. {example!r}"
            + (f" (format {config.timestamp_format!r})" if config.timestamp_format else ""),
            column=columns.timestamp,
        )
    if bad_label is not None and counts["bad_labels"]:
        example = _first_value(frame.filter(bad_label), str(columns.label), path)
        raise DataError(
            path,
            f"label outside {{0,1}}: {counts['bad_labels']} sample row(s), e.g. {example!r}",
            column=columns.label,
        )
    if counts["used"] == 0:
        raise DataError(
            path,
            f"no behaviour ({', '.join(config.behaviour_event_types)}) or sample "
            f"({', '.join(config.sample_event_types)}) rows",
            column=columns.event_type,
        )


def _first_value(frame: pl.LazyFrame, column: str, path: Path) -> object:
    return collect_checked(frame.select(pl.col(column)).head(1), path)[column][0]


def _collect_samples(
    frame: pl.LazyFrame,
    path: Path,
    config: EventLogConfig,
    timestamp_seconds: pl.Expr,
    is_sample: pl.Expr,
) -> pl.DataFrame:
    columns = config.columns
    if not columns.label:
        return pl.DataFrame(
            {"user_id": [], "item_id": [], TIMESTAMP: [], "label": []},
            schema={
                "user_id": pl.Int64,
                "item_id": pl.Int64,
                TIMESTAMP: pl.Int64,
                "label": pl.Int8,
            },
        )
    return collect_checked(
        frame.filter(is_sample).select(
            pl.col(columns.user_id).cast(pl.Int64).alias("user_id"),
            pl.col(columns.item_id).cast(pl.Int64).alias("item_id"),
            timestamp_seconds.alias(TIMESTAMP),
            pl.col(columns.label).cast(pl.Int8).alias("label"),
        ),
        path,
    )


def _split_time(config: EventLogConfig, sample_timestamps: np.ndarray, path: Path) -> int | float:
    """Samples at or after the returned time form the test split."""
    if isinstance(config.test_start, int):
        return config.test_start
    if isinstance(config.test_start, str):
        parsed = pl.Series([config.test_start]).str.to_datetime(strict=False).dt.epoch("s")[0]
        if parsed is None:
            raise DataError(
                path, f"test_start {config.test_start!r} is not a date or time", column=TIMESTAMP
            )
        return int(parsed)
    if config.test_fraction == 0.0 or sample_timestamps.size == 0:
        return math.inf
    ordered = np.sort(sample_timestamps)
    first_test = min(int(math.floor(ordered.size * (1.0 - config.test_fraction))), ordered.size - 1)
    return int(ordered[first_test])


def _read_item_table(config: ItemTableConfig | None) -> AttributeTable | None:
    if config is None:
        return None
    columns = {"category": config.category, **{name: name for name in config.attributes}}
    return read_attribute_table(config.path, config.item_id, columns, "item")


def _users_frame(
    user_ids: np.ndarray, config: UserTableConfig | None
) -> tuple[pl.DataFrame, dict[str, Vocabulary]]:
    frame: dict[str, np.ndarray] = {
        "user_index": np.arange(user_ids.size, dtype=np.int32),
        "user_id": user_ids,
    }
    vocabularies = {}
    if config is not None:
        table = read_attribute_table(
            config.path,
            config.user_id,
            {f"profile_{name}": name for name in config.features},
            "user",
        )
        user_vocabulary = Vocabulary(user_ids)
        for name in table.values.columns:
            vocabularies[name] = table.vocabulary(name)
            frame[name] = table.aligned_indices(name, vocabularies[name], user_vocabulary)[2:]
    return pl.DataFrame(frame), vocabularies


def _items_frame(
    item_vocabulary: Vocabulary,
    item_table: AttributeTable | None,
    vocabularies: dict[str, Vocabulary],
) -> pl.DataFrame:
    frame: dict[str, np.ndarray] = {
        "item_index": np.arange(2, len(item_vocabulary), dtype=np.int32),
        "item_id": item_vocabulary.raw_ids,
    }
    names = list(item_table.values.columns) if item_table is not None else ["category"]
    for name in names:
        if item_table is None:
            frame[f"{name}_index"] = np.full(
                item_vocabulary.raw_ids.size, OOV_INDEX, dtype=np.int32
            )
        else:
            frame[f"{name}_index"] = item_table.aligned_indices(
                name, vocabularies[name], item_vocabulary
            )[2:]
    return pl.DataFrame(frame)


def _plain(value: int | float) -> int | str:
    return int(value) if math.isfinite(value) else "none"
