"""The internal dataset writer/reader: round trip, memory mapping, validation, atomicity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from features.dataset import Dataset, DatasetParts, write_dataset
from features.vocabulary import Vocabulary
from muse.core.errors import DataError
from muse.core.ids import OOV_INDEX


def _parts(num_items: int = 5) -> DatasetParts:
    item_vocab = Vocabulary.from_ids(np.array([-9, 4, 17, 3, 8][:num_items]))
    category_vocab = Vocabulary.from_ids(np.array([100, 200]))
    embeddings = np.zeros((len(item_vocab), 4), dtype=np.int8)
    embeddings[2:] = np.arange(num_items * 4, dtype=np.int8).reshape(num_items, 4)
    return DatasetParts(
        vocabularies={"item": item_vocab, "category": category_vocab},
        items=pl.DataFrame({"item_index": np.arange(2, 2 + num_items, dtype=np.int32)}),
        item_embeddings=embeddings,
        sequence_offsets=np.array([0, 3, 3, 5]),
        sequence_items=np.array([2, 3, 4, 5, 6], dtype=np.int32),
        sequence_categories=np.array([2, 2, 3, 3, 2], dtype=np.int32),
        sequence_timestamps=np.array([1, 2, 3, 1, 2]),
        users=pl.DataFrame({"user_index": np.arange(3, dtype=np.int32), "user_id": [11, 12, 13]}),
        samples={
            "train": pl.DataFrame(
                {"user_index": [0, 2], "item_index": [3, 4], "label": [1, 0], "history_end": [2, 1], "timestamp": [3, 2]}
            )
        },
        embedding_scale=1 / 127,
    )


def test_round_trip_is_memory_mapped(tmp_path: Path) -> None:
    target = write_dataset(_parts(), tmp_path / "ds")
    dataset = Dataset(target)
    assert isinstance(dataset.item_embeddings, np.memmap)
    assert dataset.item_embeddings.shape == (7, 4) and dataset.embedding_scale == pytest.approx(1 / 127)
    items, categories = dataset.history(0, history_end=2)
    assert items.tolist() == [2, 3] and categories.tolist() == [2, 2]
    assert dataset.history(1)[0].size == 0
    assert dataset.samples("train")["label"].dtype == pl.Int8
    assert dataset.vocabulary("item").lookup(np.array([17, 999])).tolist() == [6, OOV_INDEX]
    assert dataset.vocabulary_size("item") == 7


def test_invalid_parts_leave_nothing_behind(tmp_path: Path) -> None:
    parts = _parts()
    parts.sequence_offsets = np.array([0, 3, 2, 5])
    with pytest.raises(DataError, match="never decrease"):
        write_dataset(parts, tmp_path / "ds")
    assert list(tmp_path.iterdir()) == []


def test_failed_rewrite_keeps_the_previous_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = write_dataset(_parts(), tmp_path / "ds")
    before = (target / "manifest.json").read_text()

    def explode(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", explode)
    with pytest.raises(OSError, match="disk full"):
        write_dataset(_parts(), target)
    assert (target / "manifest.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


def test_vocabulary_maps_negative_ids_and_oov() -> None:
    vocabulary = Vocabulary.from_ids(np.array([5, -7, 5, 2**62]))
    assert len(vocabulary) == 5
    assert vocabulary.lookup(np.array([-7, 5, 2**62, 0])).tolist() == [2, 3, 4, OOV_INDEX]
    assert vocabulary.raw_of(np.array([2, 4, 0])).tolist() == [-7, 2**62, -1]


def test_not_a_dataset_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="manifest.json"):
        Dataset(tmp_path)


def test_atomic_file_gets_the_usual_mode(tmp_path: Path) -> None:
    import os

    from muse.core.atomic_write import write_text_atomic

    write_text_atomic(tmp_path / "note.txt", "x")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "note.txt").stat().st_mode & 0o777 == 0o666 & ~umask
