"""Reader of the item-to-item (I2I) input format: an item catalogue with images and text, and pairs.

A directory holds (docs/data-format.md, "Item-to-item input"):

- ``items.parquet``: ``item_id`` int64, ``title`` str, ``content`` str, ``topics`` list<str>,
  ``category`` str, and either ``image`` (PNG/JPEG bytes) or ``image_path`` (str, relative to the
  file's folder or absolute);
- ``train_pairs.parquet`` and ``test_pairs.parquet``: ``item_id_a``, ``item_id_b`` int64, optional
  ``weight`` float (default 1.0) and optional ``link_kind`` str.

Every check runs before anything is returned, and each problem is a
:class:`muse.core.errors.DataError` naming the file, the column and what is wrong. The result is
torch-free (numpy arrays and tuples) so that a torch data pipeline can wrap it later. Images are
decoded once to check them; embedded bytes are kept, image paths are read again on access.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from PIL import Image

from muse.core.errors import DataError

ITEMS_FILE = "items.parquet"
TRAIN_PAIRS_FILE = "train_pairs.parquet"
TEST_PAIRS_FILE = "test_pairs.parquet"
IMAGE_FORMATS = ("PNG", "JPEG")
# Problems that list offending ids show at most this many.
_SHOWN_IDS = 5


@dataclass(frozen=True)
class ItemCatalogue:
    """Items in file order; row ``i`` of every field belongs to ``item_ids[i]``."""

    path: Path  # the items.parquet file
    item_ids: np.ndarray  # (N,) int64, unique
    titles: tuple[str, ...]
    contents: tuple[str, ...]
    topics: tuple[tuple[str, ...], ...]
    categories: tuple[str, ...]
    # Exactly one of these is set: embedded image bytes, or absolute image file paths.
    embedded_images: tuple[bytes, ...] | None
    image_paths: tuple[Path, ...] | None

    def __len__(self) -> int:
        return int(self.item_ids.size)

    def image_bytes(self, index: int) -> bytes:
        """The encoded (PNG/JPEG) image of row ``index``."""
        if self.embedded_images is not None:
            return self.embedded_images[index]
        assert self.image_paths is not None
        return self.image_paths[index].read_bytes()

    def image(self, index: int) -> Image.Image:
        """The decoded RGB image of row ``index``."""
        with Image.open(io.BytesIO(self.image_bytes(index))) as image:
            return image.convert("RGB")

    def rows_of(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """(M,) int64 row of each item id; raises KeyError for an id the catalogue lacks."""
        ids = np.asarray(ids, dtype=np.int64)
        order = _id_order(self.item_ids)
        sorted_ids = self.item_ids[order]
        positions = np.clip(np.searchsorted(sorted_ids, ids), 0, max(sorted_ids.size - 1, 0))
        found = sorted_ids.size > 0 and bool(np.all(sorted_ids[positions] == ids))
        if not found:
            missing = ids if sorted_ids.size == 0 else ids[sorted_ids[positions] != ids]
            raise KeyError(f"unknown item id(s) {_show(missing)}")
        return order[positions].astype(np.int64)


@dataclass(frozen=True)
class ItemPairs:
    """Co-engaged item pairs; ``row_a``/``row_b`` index the catalogue's rows."""

    path: Path
    item_id_a: np.ndarray  # (P,) int64
    item_id_b: np.ndarray  # (P,) int64
    row_a: np.ndarray  # (P,) int64
    row_b: np.ndarray  # (P,) int64
    weight: np.ndarray  # (P,) float64, > 0
    link_kind: tuple[str, ...] | None  # the generator's link kind per pair, when the file has one

    def __len__(self) -> int:
        return int(self.item_id_a.size)


@dataclass(frozen=True)
class ItemPairDataset:
    """A catalogue with its training and test pairs."""

    items: ItemCatalogue
    train: ItemPairs
    test: ItemPairs


def read_item_pair_dataset(directory: str | Path) -> ItemPairDataset:
    """Read and check ``items.parquet``, ``train_pairs.parquet`` and ``test_pairs.parquet``."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(directory, "directory not found")
    items = read_items(directory / ITEMS_FILE)
    return ItemPairDataset(
        items=items,
        train=read_pairs(directory / TRAIN_PAIRS_FILE, items),
        test=read_pairs(directory / TEST_PAIRS_FILE, items),
    )


def read_items(path: str | Path) -> ItemCatalogue:
    """Read and check an items file (every image is decoded once)."""
    path = Path(path)
    frame = _read_parquet(path)
    for column in ("item_id", "title", "content", "topics", "category"):
        _require(frame, path, column)
    ids = _int_column(frame, path, "item_id")
    _check_unique(ids, path)
    titles = _text_column(frame, path, "title")
    contents = _text_column(frame, path, "content")
    empty = [
        int(item_id)
        for item_id, title, content in zip(ids, titles, contents, strict=True)
        if not title.strip() and not content.strip()
    ]
    if empty:
        raise DataError(
            path,
            f"empty text (title and content both empty) for item id(s) {_show(empty)}",
            "title",
        )
    topics = _topics_column(frame, path)
    categories = _text_column(frame, path, "category")
    has_bytes, has_path = "image" in frame.columns, "image_path" in frame.columns
    if has_bytes and has_path:
        raise DataError(path, "both 'image' and 'image_path' are present; keep one", "image_path")
    if not has_bytes and not has_path:
        raise DataError(path, "missing column (need 'image' bytes or 'image_path')", "image")
    if has_bytes:
        if frame.schema["image"] != pl.Binary:
            raise DataError(
                path, f"expected binary image bytes, got {frame.schema['image']}", "image"
            )
        images = tuple(frame["image"].to_list())
        for item_id, data in zip(ids, images, strict=True):
            _check_image(data, path, "image", int(item_id))
        return ItemCatalogue(path, ids, titles, contents, topics, categories, images, None)
    if frame.schema["image_path"] != pl.String:
        raise DataError(
            path, f"expected string paths, got {frame.schema['image_path']}", "image_path"
        )
    paths = []
    for item_id, name in zip(ids, frame["image_path"].to_list(), strict=True):
        if not name:
            raise DataError(path, f"missing image path for item id {int(item_id)}", "image_path")
        image_path = Path(name) if Path(name).is_absolute() else path.parent / name
        if not image_path.is_file():
            raise DataError(
                path, f"image file not found: {image_path} (item id {int(item_id)})", "image_path"
            )
        _check_image(image_path.read_bytes(), path, "image_path", int(item_id))
        paths.append(image_path.resolve())
    return ItemCatalogue(path, ids, titles, contents, topics, categories, None, tuple(paths))


def read_item_categories(
    path: str | Path, item_ids: Sequence[int] | np.ndarray
) -> tuple[np.ndarray, tuple[str, ...]]:
    """The category of each of ``item_ids`` from an items file, without reading its images.

    Returns ``codes`` (M,) int64 aligned with ``item_ids`` and ``names`` with ``names[code]`` the
    category: code 0 is the unnamed category "" (an empty category, or an id the file lacks),
    codes 1… are the file's distinct non-empty categories in sorted order. Raises DataError when
    the file is bad or holds none of ``item_ids``.
    """
    path = Path(path)
    frame = _read_parquet(path, columns=("item_id", "category"))
    ids = _int_column(frame, path, "item_id")
    _check_unique(ids, path)
    categories = np.asarray(_text_column(frame, path, "category"), dtype=object)
    names = ("", *sorted({name for name in categories if name}))
    code_of = {name: code for code, name in enumerate(names)}
    file_codes = np.array([code_of[name] for name in categories], dtype=np.int64)
    wanted = np.asarray(item_ids, dtype=np.int64)
    order = _id_order(ids)
    positions = np.clip(np.searchsorted(ids[order], wanted), 0, ids.size - 1)
    found = ids[order][positions] == wanted
    if wanted.size and not found.any():
        raise DataError(path, f"none of the {wanted.size:,} item ids is in the file", "item_id")
    codes = np.where(found, file_codes[order][positions], 0).astype(np.int64)
    return codes, names


def read_pairs(path: str | Path, items: ItemCatalogue) -> ItemPairs:
    """Read and check a pairs file against ``items``."""
    path = Path(path)
    frame = _read_parquet(path)
    for column in ("item_id_a", "item_id_b"):
        _require(frame, path, column)
    id_a = _int_column(frame, path, "item_id_a")
    id_b = _int_column(frame, path, "item_id_b")
    rows = []
    for column, ids in (("item_id_a", id_a), ("item_id_b", id_b)):
        try:
            rows.append(items.rows_of(ids))
        except KeyError as error:
            raise DataError(path, f"{error.args[0]} not in {items.path.name}", column) from error
    self_pairs = id_a[id_a == id_b]
    if self_pairs.size:
        raise DataError(path, f"self-pair(s) of item id(s) {_show(self_pairs)}", "item_id_b")
    weight = np.ones(id_a.size, dtype=np.float64)
    if "weight" in frame.columns:
        dtype = frame.schema["weight"]
        if not (dtype.is_float() or dtype.is_integer()):
            raise DataError(path, f"expected a number, got {dtype}", "weight")
        if frame["weight"].null_count():
            raise DataError(path, "null values", "weight")
        weight = frame["weight"].cast(pl.Float64).to_numpy()
        if not np.all(np.isfinite(weight) & (weight > 0)):
            raise DataError(path, "weights must be finite and > 0", "weight")
    link_kind = None
    if "link_kind" in frame.columns:
        link_kind = _text_column(frame, path, "link_kind", allow_null=False)
    return ItemPairs(path, id_a, id_b, rows[0], rows[1], weight, link_kind)


def _read_parquet(path: Path, columns: Sequence[str] | None = None) -> pl.DataFrame:
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        names = pl.read_parquet_schema(path)
    except Exception as error:  # polars raises several kinds for a damaged file
        raise DataError(path, f"not a readable parquet file: {error}") from error
    for column in columns or ():
        if column not in names:
            raise DataError(path, f"missing column (has: {', '.join(names)})", column)
    try:
        frame = pl.read_parquet(path, columns=list(columns) if columns else None)
    except Exception as error:  # polars raises several kinds for a damaged file
        raise DataError(path, f"not a readable parquet file: {error}") from error
    if frame.height == 0:
        raise DataError(path, "no rows")
    return frame


def _require(frame: pl.DataFrame, path: Path, column: str) -> None:
    if column not in frame.columns:
        raise DataError(path, f"missing column (has: {', '.join(frame.columns)})", column)


def _int_column(frame: pl.DataFrame, path: Path, column: str) -> np.ndarray:
    dtype = frame.schema[column]
    if not dtype.is_integer():
        raise DataError(path, f"expected an integer id, got {dtype}", column)
    if frame[column].null_count():
        raise DataError(path, "null ids", column)
    return frame[column].cast(pl.Int64).to_numpy()


def _text_column(
    frame: pl.DataFrame, path: Path, column: str, allow_null: bool = True
) -> tuple[str, ...]:
    dtype = frame.schema[column]
    if dtype != pl.String:
        raise DataError(path, f"expected a string, got {dtype}", column)
    if not allow_null and frame[column].null_count():
        raise DataError(path, "null values", column)
    return tuple(value or "" for value in frame[column].to_list())


def _topics_column(frame: pl.DataFrame, path: Path) -> tuple[tuple[str, ...], ...]:
    dtype = frame.schema["topics"]
    if dtype != pl.List(pl.String):
        raise DataError(path, f"expected list<str>, got {dtype}", "topics")
    return tuple(
        tuple(topic for topic in (topics or []) if topic) for topics in frame["topics"].to_list()
    )


def _check_unique(ids: np.ndarray, path: Path) -> None:
    values, counts = np.unique(ids, return_counts=True)
    if values.size != ids.size:
        raise DataError(path, f"duplicate item id(s) {_show(values[counts > 1])}", "item_id")


def _check_image(data: bytes | None, path: Path, column: str, item_id: int) -> None:
    """Decode ``data`` fully (verify catches bad chunks, load catches truncation)."""
    if not data:
        raise DataError(path, f"missing image for item id {item_id}", column)
    try:
        with Image.open(io.BytesIO(data)) as image:
            found = image.format
            image.verify()
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    except Exception as error:  # PIL raises many kinds for a damaged image
        raise DataError(path, f"corrupt image for item id {item_id}: {error}", column) from error
    if found not in IMAGE_FORMATS:
        raise DataError(
            path, f"image of item id {item_id} is {found}; expected PNG or JPEG", column
        )


def _id_order(ids: np.ndarray) -> np.ndarray:
    return np.argsort(ids, kind="stable")


def _show(ids: Sequence[int] | np.ndarray) -> str:
    values = [int(value) for value in np.asarray(ids).ravel()]
    shown = ", ".join(str(value) for value in values[:_SHOWN_IDS])
    return shown + (f" (and {len(values) - _SHOWN_IDS} more)" if len(values) > _SHOWN_IDS else "")
