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
from tests.dataset_factory import RawDataset, Samples


def _parts() -> DatasetParts:
    """Users 11 (3 behaviours), 12 (none) and 13 (2); items -9, 3, 4, 8, 17 get indices 2 … 6."""
    return RawDataset(
        item_ids=[-9, 4, 17, 3, 8],
        item_categories=[100, 200, 100, 100, 200],
        item_embeddings=np.arange(20, dtype=np.int8).reshape(5, 4),
        embedding_scale=1 / 127,
        user_ids=[11, 12, 13],
        histories=[[-9, 3, 4], [], [8, 17]],
        history_timestamps=[[1, 2, 3], [], [1, 2]],
        samples={
            "train": Samples(users=[0, 2], items=[3, 4], labels=[1, 0], history_end=[2, 1], timestamps=[3, 2])
        },
    ).parts()


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
