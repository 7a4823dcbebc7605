"""Test datasets built from raw ids, the way a reader builds them.

A fixture says what its data means in raw terms: the known items (raw item ids, their raw
category ids, raw attribute columns, one MM embedding row each), the users (raw user ids, raw
profile columns, each user's history as raw item ids, oldest first) and the samples of each split
(user row, raw target item id, label, history cut-off, time). :class:`RawDataset` turns that into
``features.dataset.DatasetParts`` exactly as the readers do:

- every vocabulary is built from the raw ids it covers (sorted, index 0 padding, 1 OOV, known ids
  from 2 in ascending raw-id order); ``vocabularies`` may give a vocabulary's full raw id list so
  that unused ids keep their indices;
- a raw id outside its vocabulary (a history item or sample target that is not a known item, a
  profile value outside a given list) becomes OOV, as in real data; a behaviour's category is its
  item's category (OOV for an unknown item) unless ``history_categories`` gives raw ones;
- histories become the CSR arrays (one row per entry of ``user_ids``; a raw user id may own
  several rows), timestamps default to positions 0 … n−1, a sample's ``history_end`` to its user's
  whole history;
- item embedding rows land on their item's index; padding and OOV rows stay zero.

``RawDataset(...).parts()`` returns the parts; ``.write(target)`` writes them with the real
writer and opens the result as a :class:`features.dataset.Dataset`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from features.dataset import Dataset, DatasetParts, write_dataset
from features.vocabulary import Vocabulary
from muse.core.ids import OOV_INDEX

Ids = npt.ArrayLike


def _int64(values: Ids) -> np.ndarray:
    return np.asarray(values, dtype=np.int64).ravel()


@dataclass(frozen=True)
class Samples:
    """One split's impressions in raw terms; entry i of every column is sample i."""

    users: Ids  # user row of each sample: a position in RawDataset.user_ids
    items: Ids  # raw target item id; an id that is not a known item becomes OOV
    labels: Ids  # 0 or 1
    history_end: Ids | None = None  # visible history length; default: the user's whole history
    timestamps: Ids | None = None  # impression time; default: the row number


@dataclass(frozen=True)
class RawDataset:
    """A whole dataset in raw ids; ``parts()`` maps it to the internal format (module docstring).

    ``item_attributes`` and ``profiles`` are keyed by raw column name: attribute ``city`` becomes
    ``items.city_index`` over vocabulary ``city``, profile ``age`` becomes ``users.profile_age``
    over vocabulary ``profile_age``. ``vocabularies`` is keyed by stored vocabulary name (``item``,
    ``category``, an attribute, ``profile_<name>``). ``item_embeddings`` holds one int8 or float16
    row per entry of ``item_ids`` (default: width 0).
    """

    item_ids: Ids
    item_categories: Ids | None = None  # raw category id per item; default: every item's is OOV
    item_attributes: Mapping[str, Ids] = field(default_factory=dict)
    item_embeddings: np.ndarray | None = None
    embedding_scale: float = 1.0
    user_ids: Ids = ()
    histories: Sequence[Ids] | None = None  # raw item ids per user row, oldest first
    history_categories: Sequence[Ids] | None = None  # raw category ids per behaviour
    history_timestamps: Sequence[Ids] | None = None  # per behaviour; default: 0 … n−1 per row
    profiles: Mapping[str, Ids] = field(default_factory=dict)
    samples: Mapping[str, Samples] = field(default_factory=dict)
    extra_files: Mapping[str, pl.DataFrame] = field(default_factory=dict)
    vocabularies: Mapping[str, Ids] = field(default_factory=dict)
    source: Mapping[str, Any] = field(default_factory=lambda: {"reader": "tests.dataset_factory"})

    def write(self, target: str | Path) -> Dataset:
        """Write ``parts()`` to directory ``target`` with the real writer and open it."""
        return Dataset(write_dataset(self.parts(), target))

    def parts(self) -> DatasetParts:
        """The dataset as ``DatasetParts`` (vocabularies, index mapping, CSR sequences, samples)."""
        item_ids = _int64(self.item_ids)
        if np.unique(item_ids).size != item_ids.size:
            raise ValueError("item_ids holds a raw id twice")
        attribute_names = tuple(self.item_attributes)
        profile_names = tuple(f"profile_{name}" for name in self.profiles)
        unknown = set(self.vocabularies) - {"item", "category", *attribute_names, *profile_names}
        if unknown:
            raise ValueError(f"vocabularies {sorted(unknown)} name no item, attribute or profile column")
        item_vocabulary = self._vocabulary("item", item_ids)
        item_index = item_vocabulary.lookup(item_ids)
        if np.any(item_index == OOV_INDEX):
            raise ValueError("the item vocabulary given lacks some of item_ids")

        user_ids = _int64(self.user_ids)
        histories = (
            [np.empty(0, dtype=np.int64)] * user_ids.size
            if self.histories is None
            else [_int64(history) for history in self.histories]
        )
        lengths = np.array([h.size for h in histories], dtype=np.int64)
        if lengths.size != user_ids.size:
            raise ValueError(f"{lengths.size} histories for {user_ids.size} users")
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        sequence_items = item_vocabulary.lookup(_concat(histories))
        history_categories = _per_behaviour(self.history_categories, lengths, "history_categories")
        sequence_timestamps = _per_behaviour(self.history_timestamps, lengths, "history_timestamps")
        if sequence_timestamps is None:
            sequence_timestamps = _concat([np.arange(n, dtype=np.int64) for n in lengths])

        item_categories = (
            None
            if self.item_categories is None
            else _per_item(self.item_categories, item_ids, "item_categories")
        )
        category_vocabulary = self._vocabulary(
            "category", *(ids for ids in (item_categories, history_categories) if ids is not None)
        )
        category_index = (
            np.full(item_ids.size, OOV_INDEX, dtype=np.int32)
            if item_categories is None
            else category_vocabulary.lookup(item_categories)
        )
        if history_categories is not None:
            sequence_categories = category_vocabulary.lookup(history_categories)
        else:  # each behaviour carries its item's category; an OOV item's is OOV
            category_of = np.full(len(item_vocabulary), OOV_INDEX, dtype=np.int32)
            category_of[item_index] = category_index
            sequence_categories = category_of[sequence_items]

        vocabularies = {"item": item_vocabulary, "category": category_vocabulary}
        items = {"item_index": item_index, "item_id": item_ids, "category_index": category_index}
        for name, raw in self.item_attributes.items():
            raw = _per_item(raw, item_ids, f"item_attributes[{name!r}]")
            vocabularies[name] = self._vocabulary(name, raw)
            items[f"{name}_index"] = vocabularies[name].lookup(raw)
        users = {"user_index": np.arange(user_ids.size, dtype=np.int32), "user_id": user_ids}
        for name, raw in zip(profile_names, self.profiles.values(), strict=True):
            raw = _int64(raw)
            if raw.size != user_ids.size:
                raise ValueError(f"profile {name!r} has {raw.size} values for {user_ids.size} users")
            vocabularies[name] = self._vocabulary(name, raw)
            users[name] = vocabularies[name].lookup(raw)

        return DatasetParts(
            vocabularies=vocabularies,
            items=pl.DataFrame(items).sort("item_index"),
            item_embeddings=self._embedding_table(item_index, len(item_vocabulary)),
            sequence_offsets=offsets,
            sequence_items=sequence_items,
            sequence_categories=sequence_categories.astype(np.int32),
            sequence_timestamps=sequence_timestamps.astype(np.int64),
            users=pl.DataFrame(users),
            samples={
                split: _sample_frame(samples, item_vocabulary, lengths, split)
                for split, samples in self.samples.items()
            },
            embedding_scale=self.embedding_scale,
            item_attributes=attribute_names,
            profile_features=profile_names,
            extra_files=dict(self.extra_files),
            source=dict(self.source),
        )

    def _vocabulary(self, name: str, *raw: np.ndarray) -> Vocabulary:
        if name in self.vocabularies:
            return Vocabulary.from_ids(_int64(self.vocabularies[name]))
        return Vocabulary.from_ids(*raw)

    def _embedding_table(self, item_index: np.ndarray, rows: int) -> np.ndarray:
        vectors = self.item_embeddings
        if vectors is None:
            vectors = np.zeros((item_index.size, 0), dtype=np.int8)
        if vectors.ndim != 2 or vectors.shape[0] != item_index.size:
            raise ValueError(f"item_embeddings must have one row per item, got shape {vectors.shape}")
        table = np.zeros((rows, vectors.shape[1]), dtype=vectors.dtype)
        table[item_index] = vectors
        return table


def _concat(arrays: Sequence[np.ndarray]) -> np.ndarray:
    return np.concatenate([np.empty(0, dtype=np.int64), *arrays])


def _per_item(raw: Ids, item_ids: np.ndarray, what: str) -> np.ndarray:
    values = _int64(raw)
    if values.size != item_ids.size:
        raise ValueError(f"{what} has {values.size} values for {item_ids.size} items")
    return values


def _per_behaviour(rows: Sequence[Ids] | None, lengths: np.ndarray, what: str) -> np.ndarray | None:
    if rows is None:
        return None
    arrays = [_int64(row) for row in rows]
    if [a.size for a in arrays] != lengths.tolist():
        raise ValueError(f"{what} must match the histories row for row")
    return _concat(arrays)


def _sample_frame(
    samples: Samples, item_vocabulary: Vocabulary, lengths: np.ndarray, split: str
) -> pl.DataFrame:
    users = _int64(samples.users)
    items = _int64(samples.items)
    labels = _int64(samples.labels)
    if not users.size == items.size == labels.size:
        raise ValueError(f"samples[{split!r}]: users, items and labels differ in length")
    if users.size and (users.min() < 0 or users.max() >= lengths.size):
        raise ValueError(f"samples[{split!r}]: a user row is outside 0 … {lengths.size - 1}")
    if np.any((labels != 0) & (labels != 1)):
        raise ValueError(f"samples[{split!r}]: labels must be 0 or 1")
    history_end = lengths[users] if samples.history_end is None else _int64(samples.history_end)
    if history_end.size != users.size or np.any((history_end < 0) | (history_end > lengths[users])):
        raise ValueError(f"samples[{split!r}]: history_end must lie within each user's history")
    timestamps = (
        np.arange(users.size, dtype=np.int64)
        if samples.timestamps is None
        else _int64(samples.timestamps)
    )
    return pl.DataFrame(
        {
            "user_index": users.astype(np.int32),
            "item_index": item_vocabulary.lookup(items),
            "label": labels.astype(np.int8),
            "history_end": history_end,
            "timestamp": timestamps,
        }
    )
