"""A keyed attribute table (one row per item or user id, categorical attribute columns).

Used for Taobao-MM's item features, an event log's item table and its user table. Ids must be
present and unique; a null attribute value is allowed and maps to the OOV index.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from features.input_table import (
    ColumnKind,
    collect_checked,
    require_columns,
    require_rows_without_nulls,
    require_unique,
    scan_table,
)
from features.vocabulary import Vocabulary
from muse.core.ids import OOV_INDEX, PADDING_INDEX


@dataclass(frozen=True)
class AttributeTable:
    """Raw ids (file order) and raw attribute values (Int64, nulls allowed) of a keyed table."""

    path: Path
    ids: np.ndarray
    values: pl.DataFrame

    def vocabulary(self, name: str, *extra_ids: np.ndarray) -> Vocabulary:
        """Vocabulary of attribute ``name``'s non-null values plus any ``extra_ids``."""
        known = self.values[name].drop_nulls().to_numpy()
        return Vocabulary.from_ids(known, *extra_ids)

    def aligned_indices(
        self, name: str, vocabulary: Vocabulary, id_vocabulary: Vocabulary
    ) -> np.ndarray:
        """(V,) int32: attribute index of every id index of ``id_vocabulary``; OOV where unknown."""
        aligned = np.full(len(id_vocabulary), OOV_INDEX, dtype=np.int32)
        aligned[PADDING_INDEX] = PADDING_INDEX
        column = self.values[name]
        indices = vocabulary.lookup(column.fill_null(0).to_numpy())
        indices[column.is_null().to_numpy()] = OOV_INDEX
        rows = id_vocabulary.lookup(self.ids)
        known = rows != OOV_INDEX
        aligned[rows[known]] = indices[known]
        return aligned


def read_attribute_table(
    path: str | Path, id_column: str, attributes: Mapping[str, str], what: str
) -> AttributeTable:
    """Read ``id_column`` and ``attributes`` (output name → source column) from ``path``.

    ``what`` names the id kind in errors ("item", "user"). Raises DataError on a missing file or
    column, a non-integer column, an empty table, null ids or duplicate ids.
    """
    path = Path(path)
    frame = scan_table(path)
    require_columns(
        frame,
        path,
        {id_column: ColumnKind.INTEGER, **dict.fromkeys(attributes.values(), ColumnKind.INTEGER)},
    )
    require_rows_without_nulls(frame, path, [id_column])
    table = collect_checked(
        frame.select(
            pl.col(id_column).cast(pl.Int64),
            *[pl.col(source).cast(pl.Int64).alias(name) for name, source in attributes.items()],
        ),
        path,
    )
    ids = table[id_column].to_numpy()
    require_unique(ids, path, id_column, what)
    return AttributeTable(path=path, ids=ids, values=table.drop(id_column))
