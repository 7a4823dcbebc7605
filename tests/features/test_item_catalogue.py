"""The item-to-item input reader: a round trip, image paths, and every bad input as a DataError."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from PIL import Image

from features.item_catalogue import (
    ITEMS_FILE,
    TEST_PAIRS_FILE,
    TRAIN_PAIRS_FILE,
    read_item_categories,
    read_item_pair_dataset,
    read_items,
    read_pairs,
)
from muse.core.errors import DataError

ITEM_SCHEMA: dict[str, Any] = {
    "item_id": pl.Int64,
    "title": pl.String,
    "content": pl.String,
    "topics": pl.List(pl.String),
    "category": pl.String,
    "image": pl.Binary,
}


def _image(rgb: tuple[int, int, int], image_format: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), rgb).save(buffer, format=image_format)
    return buffer.getvalue()


def _items(**changes: list[Any]) -> dict[str, list[Any]]:
    columns: dict[str, list[Any]] = {
        "item_id": [30, 10, 20],
        "title": ["red mug", "", "lamp"],
        "content": ["a mug", "only content", ""],
        "topics": [["mug", "kitchen"], [], None],
        "category": ["mug", "lamp", None],
        "image": [_image((200, 0, 0)), _image((0, 200, 0), "JPEG"), _image((0, 0, 200))],
    }
    return {**columns, **changes}


def _write_items(directory: Path, columns: dict[str, list[Any]]) -> Path:
    schema = {name: ITEM_SCHEMA.get(name) for name in columns}
    path = directory / ITEMS_FILE
    pl.DataFrame(columns, schema=schema).write_parquet(path)
    return path


def _write_pairs(path: Path, a: list[Any], b: list[Any], **extra: list[Any]) -> Path:
    pl.DataFrame({"item_id_a": a, "item_id_b": b, **extra}).write_parquet(path)
    return path


def _dataset(directory: Path) -> Path:
    _write_items(directory, _items())
    _write_pairs(directory / TRAIN_PAIRS_FILE, [30, 10], [10, 20], weight=[2.0, 0.5])
    _write_pairs(directory / TEST_PAIRS_FILE, [20], [30])
    return directory


def test_round_trip(tmp_path: Path) -> None:
    data = read_item_pair_dataset(_dataset(tmp_path))
    items = data.items
    assert len(items) == 3 and items.item_ids.tolist() == [30, 10, 20]
    assert items.titles == ("red mug", "", "lamp")
    assert items.contents == ("a mug", "only content", "")
    assert items.topics == (("mug", "kitchen"), (), ())
    assert items.categories == ("mug", "lamp", "")
    assert items.rows_of([20, 30]).tolist() == [2, 0]
    assert np.asarray(items.image(0)).mean(axis=(0, 1)).round().tolist() == [200, 0, 0]
    assert items.image(1).size == (8, 8)  # the JPEG decodes too
    assert data.train.item_id_a.tolist() == [30, 10] and data.train.row_b.tolist() == [1, 2]
    assert data.train.weight.tolist() == [2.0, 0.5]
    assert data.test.weight.tolist() == [1.0] and data.test.link_kind is None
    with pytest.raises(KeyError, match="99"):
        items.rows_of([99])


def test_image_paths_relative_and_absolute(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.png").write_bytes(_image((10, 20, 30)))
    absolute = tmp_path / "b.jpg"
    absolute.write_bytes(_image((0, 0, 0), "JPEG"))
    columns = _items(image_path=["img/a.png", str(absolute), "img/a.png"])
    del columns["image"]
    schema = {**{k: ITEM_SCHEMA.get(k) for k in columns}, "image_path": pl.String}
    pl.DataFrame(columns, schema=schema).write_parquet(tmp_path / ITEMS_FILE)
    items = read_items(tmp_path / ITEMS_FILE)
    assert items.embedded_images is None
    assert items.image_bytes(0) == (tmp_path / "img" / "a.png").read_bytes()
    assert np.asarray(items.image(2))[0, 0].tolist() == [10, 20, 30]


def _bad_items(tmp_path: Path, columns: dict[str, list[Any]], column: str, problem: str) -> None:
    path = _write_items(tmp_path, columns)
    with pytest.raises(DataError, match=problem) as caught:
        read_items(path)
    assert caught.value.path == str(path) and caught.value.column == column
    assert str(caught.value).startswith(f"{path}: column {column!r}: ")


@pytest.mark.parametrize(
    ("changes", "column", "problem"),
    [
        ({"item_id": [1, 2, 1]}, "item_id", "duplicate item id.* 1"),
        ({"item_id": [1, None, 3]}, "item_id", "null ids"),
        ({"item_id": ["1", "2", "3"]}, "item_id", "expected an integer"),
        ({"title": ["x", "  ", "y"], "content": ["x", "", "y"]}, "title", "empty text .* 10"),
        ({"topics": ["a", "b", "c"]}, "topics", "expected list<str>"),
        ({"category": [1, 2, 3]}, "category", "expected a string"),
        ({"image": [_image((0, 0, 0)), None, _image((0, 0, 0))]}, "image", "missing image .* 10"),
        ({"image": [_image((0, 0, 0)), b"not an image", _image((0, 0, 0))]}, "image", "corrupt image .* 10"),
        ({"image": [_image((0, 0, 0)), _image((0, 0, 0))[:60], _image((0, 0, 0))]}, "image", "corrupt image .* 10"),
        ({"image": [_image((0, 0, 0)), _image((0, 0, 0), "BMP"), _image((0, 0, 0))]}, "image", "BMP; expected PNG or JPEG"),
        ({"image": ["a", "b", "c"]}, "image", "expected binary"),
    ],
)  # fmt: skip
def test_bad_items(
    tmp_path: Path, changes: dict[str, list[Any]], column: str, problem: str
) -> None:
    columns = _items(**changes)
    path = tmp_path / ITEMS_FILE
    schema = {name: ITEM_SCHEMA[name] for name in columns if name not in changes}
    pl.DataFrame(columns, schema_overrides=schema).write_parquet(path)
    with pytest.raises(DataError, match=problem) as caught:
        read_items(path)
    assert caught.value.path == str(path) and caught.value.column == column


@pytest.mark.parametrize("column", ["item_id", "title", "content", "topics", "category"])
def test_missing_item_column(tmp_path: Path, column: str) -> None:
    columns = _items()
    del columns[column]
    _bad_items(tmp_path, columns, column, "missing column")


def test_image_column_choice(tmp_path: Path) -> None:
    columns = _items()
    del columns["image"]
    _bad_items(tmp_path, columns, "image", "need 'image' bytes or 'image_path'")
    both = _items(image_path=["a.png", "b.png", "c.png"])
    _bad_items(tmp_path, both, "image_path", "both 'image' and 'image_path'")
    paths = _items(image_path=["a.png", "b.png", "c.png"])
    del paths["image"]
    (tmp_path / "a.png").write_bytes(_image((0, 0, 0)))
    _bad_items(tmp_path, paths, "image_path", "image file not found: .*b.png .item id 10")
    (tmp_path / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (tmp_path / "c.png").write_bytes(_image((0, 0, 0)))
    _bad_items(tmp_path, paths, "image_path", "corrupt image for item id 10")


def test_file_level_problems(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found"):
        read_items(tmp_path / ITEMS_FILE)
    (tmp_path / ITEMS_FILE).write_bytes(b"garbage")
    with pytest.raises(DataError, match="not a readable parquet file"):
        read_items(tmp_path / ITEMS_FILE)
    _write_items(tmp_path, {name: [] for name in _items()})
    with pytest.raises(DataError, match="no rows"):
        read_items(tmp_path / ITEMS_FILE)
    with pytest.raises(DataError, match="directory not found"):
        read_item_pair_dataset(tmp_path / "absent")
    _write_items(tmp_path, _items())
    with pytest.raises(DataError, match=f"{TRAIN_PAIRS_FILE}: file not found"):
        read_item_pair_dataset(tmp_path)


@pytest.mark.parametrize(
    ("a", "b", "extra", "column", "problem"),
    [
        ([30, 99], [10, 20], {}, "item_id_a", "unknown item id.* 99 not in items.parquet"),
        ([30, 10], [10, 77], {}, "item_id_b", "unknown item id.* 77"),
        ([30, 10], [10, 10], {}, "item_id_b", "self-pair.* 10"),
        ([30, None], [10, 20], {}, "item_id_a", "null ids"),
        ([30.0, 10.0], [10, 20], {}, "item_id_a", "expected an integer"),
        ([30, 10], [10, 20], {"weight": [1.0, 0.0]}, "weight", "finite and > 0"),
        ([30, 10], [10, 20], {"weight": [1.0, float("nan")]}, "weight", "finite and > 0"),
        ([30, 10], [10, 20], {"weight": [1.0, None]}, "weight", "null values"),
        ([30, 10], [10, 20], {"weight": ["1", "2"]}, "weight", "expected a number"),
        ([30, 10], [10, 20], {"link_kind": ["image", None]}, "link_kind", "null values"),
    ],
)
def test_bad_pairs(
    tmp_path: Path,
    a: list[Any],
    b: list[Any],
    extra: dict[str, list[Any]],
    column: str,
    problem: str,
) -> None:
    items = read_items(_write_items(tmp_path, _items()))
    path = _write_pairs(tmp_path / TRAIN_PAIRS_FILE, a, b, **extra)
    with pytest.raises(DataError, match=problem) as caught:
        read_pairs(path, items)
    assert caught.value.path == str(path) and caught.value.column == column


def test_missing_pair_column(tmp_path: Path) -> None:
    items = read_items(_write_items(tmp_path, _items()))
    path = tmp_path / TRAIN_PAIRS_FILE
    pl.DataFrame({"item_id_a": [30]}).write_parquet(path)
    with pytest.raises(DataError, match="missing column") as caught:
        read_pairs(path, items)
    assert caught.value.column == "item_id_b"


def test_item_categories_without_images(tmp_path: Path) -> None:
    path = _write_items(tmp_path, _items(image=[b"not read", None, b"x"]))
    codes, names = read_item_categories(path, [20, 10, 30, 99])
    assert names == ("", "lamp", "mug")
    assert codes.tolist() == [0, 1, 2, 0]  # 20 has no category, 99 is not in the file
    with pytest.raises(DataError, match="none of the 2 item ids") as caught:
        read_item_categories(path, [98, 99])
    assert caught.value.column == "item_id"
    columns = _items()
    del columns["category"]
    with pytest.raises(DataError, match="missing column"):
        read_item_categories(_write_items(tmp_path, columns), [10])
