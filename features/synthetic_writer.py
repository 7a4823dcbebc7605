"""Streams the synthetic dataset to parquet in the Taobao-MM raw schema, one row group per chunk.

Column names and types follow the public Taobao-MM release (schema in the shared fixture's
README): list columns are built from flat numpy arrays and offsets, never from Python lists.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

USER = "129_1"
ITEM = "205"
CATEGORY = "206"
CITY = "213"
PROVINCE = "214"
EMBEDDING = "205_c"
LABEL = "label_0"
PROFILE_COLUMNS = ("130_1", "130_2", "130_3", "130_4", "130_5")
HISTORY_ITEMS = "150_2_180"
HISTORY_CATEGORIES = "151_2_180"
PROBABILITY = "probability"


def _list_of(value_type: pa.DataType) -> pa.DataType:
    # Taobao-MM's files (written by pandas) name the list child "element".
    return pa.list_(pa.field("element", value_type))


SAMPLES_SCHEMA = pa.schema([(LABEL, _list_of(pa.int8())), (USER, pa.int64()), (ITEM, pa.int64())])
USER_FEATURES_SCHEMA = pa.schema(
    [(USER, pa.int64())]
    + [(name, pa.int64()) for name in PROFILE_COLUMNS]
    + [(HISTORY_ITEMS, _list_of(pa.int64())), (HISTORY_CATEGORIES, _list_of(pa.int64()))]
)
ITEM_FEATURES_SCHEMA = pa.schema(
    [(ITEM, pa.int64()), (CATEGORY, pa.int64()), (CITY, pa.int64()), (PROVINCE, pa.int64())]
)
EMBEDDING_SCHEMA = pa.schema([(ITEM, pa.int64()), (EMBEDDING, _list_of(pa.int8()))])
PROBABILITY_SCHEMA = pa.schema([(PROBABILITY, pa.float64())])

FILE_SCHEMAS = {
    "train_samples.parquet": SAMPLES_SCHEMA,
    "test_samples.parquet": SAMPLES_SCHEMA,
    "train_user_features.parquet": USER_FEATURES_SCHEMA,
    "test_user_features.parquet": USER_FEATURES_SCHEMA,
    "item_features.parquet": ITEM_FEATURES_SCHEMA,
    "scl_embedding_int8_p90.parquet": EMBEDDING_SCHEMA,
    "test_click_probability.parquet": PROBABILITY_SCHEMA,
}
_STREAMED = (
    "train_samples.parquet",
    "test_samples.parquet",
    "train_user_features.parquet",
    "test_user_features.parquet",
    "test_click_probability.parquet",
)


def fixed_size_lists(values: np.ndarray, row_length: int, value_type: pa.DataType) -> pa.Array:
    """List array whose rows are consecutive runs of ``row_length`` values (no copy of values)."""
    rows = values.size // row_length if row_length else 0
    offsets = pa.array(np.arange(0, rows * row_length + 1, max(row_length, 1), dtype=np.int32))
    return pa.ListArray.from_arrays(
        offsets, pa.array(values, type=value_type), type=_list_of(value_type)
    )


class TaobaoMMWriter:
    """Open parquet writers for the streamed files of one output directory."""

    def __init__(self, directory: Path, compression: str = "snappy") -> None:
        self.directory = directory
        self.compression = compression
        self.writers = {
            name: pq.ParquetWriter(directory / name, FILE_SCHEMAS[name], compression=compression)
            for name in _STREAMED
        }

    def write_items(
        self,
        item_ids: np.ndarray,
        category_ids: np.ndarray,
        city_ids: np.ndarray,
        province_ids: np.ndarray,
        embedding_int8: np.ndarray,
        has_embedding: np.ndarray,
    ) -> None:
        """item_features.parquet (every item) and scl_embedding_int8_p90.parquet (covered items)."""
        items = pa.table(
            [
                pa.array(item_ids),
                pa.array(category_ids),
                pa.array(city_ids),
                pa.array(province_ids),
            ],
            schema=ITEM_FEATURES_SCHEMA,
        )
        pq.write_table(
            items, self.directory / "item_features.parquet", compression=self.compression
        )
        covered = np.flatnonzero(has_embedding)
        dim = embedding_int8.shape[1]
        embeddings = pa.table(
            [
                pa.array(item_ids[covered]),
                fixed_size_lists(
                    np.ascontiguousarray(embedding_int8[covered]).ravel(), dim, pa.int8()
                ),
            ],
            schema=EMBEDDING_SCHEMA,
        )
        pq.write_table(
            embeddings,
            self.directory / "scl_embedding_int8_p90.parquet",
            compression=self.compression,
        )

    def write_samples(
        self, split: str, user_ids: np.ndarray, item_ids: np.ndarray, labels: np.ndarray
    ) -> None:
        """One row group of ``{split}_samples.parquet``; label_0 is one-hot [no click, click]."""
        clicked = labels.astype(np.int8)
        one_hot = np.stack([1 - clicked, clicked], axis=1).ravel()
        table = pa.table(
            [fixed_size_lists(one_hot, 2, pa.int8()), pa.array(user_ids), pa.array(item_ids)],
            schema=SAMPLES_SCHEMA,
        )
        self.writers[f"{split}_samples.parquet"].write_table(table)

    def write_user_features(
        self,
        split: str,
        user_ids: np.ndarray,
        profile_ids: np.ndarray,
        history_item_ids: np.ndarray,
        history_category_ids: np.ndarray,
    ) -> None:
        """One row group of ``{split}_user_features.parquet``; histories (U, L), oldest first."""
        length = history_item_ids.shape[1]
        columns = [pa.array(user_ids)]
        columns += [
            pa.array(np.ascontiguousarray(profile_ids[:, f])) for f in range(len(PROFILE_COLUMNS))
        ]
        columns += [
            fixed_size_lists(history_item_ids.ravel(), length, pa.int64()),
            fixed_size_lists(history_category_ids.ravel(), length, pa.int64()),
        ]
        self.writers[f"{split}_user_features.parquet"].write_table(
            pa.table(columns, schema=USER_FEATURES_SCHEMA)
        )

    def write_test_probability(self, probability: np.ndarray) -> None:
        """One row group of test_click_probability.parquet, row-aligned with test_samples."""
        self.writers["test_click_probability.parquet"].write_table(
            pa.table([pa.array(probability.astype(np.float64))], schema=PROBABILITY_SCHEMA)
        )

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()
