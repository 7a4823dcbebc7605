"""Bad input: each case is a DataError naming file, column and problem, and nothing is left written."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from features.embedding_reader import (
    EmbeddingSourceConfig,
    read_embedding_ids,
    read_item_embeddings,
)
from features.event_log import EventLogConfig, ItemTableConfig, read_event_log
from features.taobao_mm import read_taobao_mm
from features.vocabulary import Vocabulary
from muse.cli.main import main
from muse.core.config_loader import config_to_dict, dump_toml
from muse.core.errors import DataError
from tests.features.data_files import write_table

GOOD_LOG: dict[str, list[Any]] = {
    "user_id": [1, 1, 2, 2],
    "item_id": [10, 11, 10, 12],
    "timestamp": [100, 200, 150, 300],
    "event_type": ["click", "impression", "click", "impression"],
    "label": [None, 1, None, 0],
}


def _log(**changes: list[Any]) -> dict[str, list[Any]]:
    return {**GOOD_LOG, **changes}


def _without(column: str) -> dict[str, list[Any]]:
    return {name: values for name, values in GOOD_LOG.items() if name != column}


def _prepare_events(
    tmp_path: Path, config: EventLogConfig, capsys: pytest.CaptureFixture[str]
) -> str:
    """Run `muse data prepare events`; it must fail with exit 2 and leave no output behind."""
    config_path = tmp_path / "config.toml"
    config_path.write_text(dump_toml(config_to_dict(config)))
    out_parent = tmp_path / "out"
    out_parent.mkdir()
    code = main(
        [
            "data",
            "prepare",
            "events",
            "--config",
            str(config_path),
            "--out",
            str(out_parent / "ds"),
            "--no-progress",
        ]
    )
    assert code == 2
    assert list(out_parent.iterdir()) == []  # no dataset, no temporary directory
    return capsys.readouterr().err


def _expect(error: DataError, file_name: str, column: str | None, problem: str) -> None:
    assert Path(error.path).name == file_name
    assert error.column == column
    assert problem in error.problem
    assert file_name in str(error) and problem in str(error)
    if column:
        assert f"column {column!r}" in str(error)


EVENT_LOG_CASES: dict[str, tuple[str, dict[str, list[Any]] | bytes | None, str | None, str]] = {
    "missing file": ("log.parquet", None, None, "file not found"),
    "missing column": ("log.parquet", _without("item_id"), "item_id", "missing column"),
    "wrong dtype": ("log.parquet", _log(user_id=["a", "b", "c", "d"]), "user_id", "wrong dtype"),
    "wrong timestamp dtype": (
        "log.parquet",
        _log(timestamp=[1.5, 2.5, 3.5, 4.5]),
        "timestamp",
        "wrong dtype",
    ),
    "empty csv": ("log.csv", b"", None, "file is empty"),
    "header-only csv": (
        "log.csv",
        b"user_id,item_id,timestamp,event_type,label\n",
        None,
        "file is empty",
    ),
    "null user id": ("log.parquet", _log(user_id=[1, None, 2, 2]), "user_id", "null value"),
    "null item id": ("log.csv", _log(item_id=[None, 11, 10, 12]), "item_id", "null value"),
    "label outside {0,1}": (
        "log.parquet",
        _log(label=[None, 2, None, 0]),
        "label",
        "label outside {0,1}",
    ),
    "missing label on a sample": (
        "log.parquet",
        _log(label=[None, None, None, 0]),
        "label",
        "label outside {0,1}",
    ),
    "unparseable timestamp": (
        "log.csv",
        _log(
            timestamp=[
                "2024-01-01T00:00:00",
                "2024-01-02T00:00:00",
                "yesterday",
                "2024-01-03T00:00:00",
            ]
        ),
        "timestamp",
        "cannot be parsed, e.g. 'yesterday'",
    ),
    "not parquet": ("log.parquet", b"this is not parquet", None, "cannot read"),
    "no usable rows": ("log.parquet", _log(event_type=["view"] * 4), "event_type", "no behaviour"),
}


@pytest.mark.parametrize("case", sorted(EVENT_LOG_CASES))
def test_event_log_bad_input(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file_name, content, column, problem = EVENT_LOG_CASES[case]
    path = tmp_path / file_name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        write_table(path, content)
    config = EventLogConfig(events=path)
    with pytest.raises(DataError) as error:
        read_event_log(config)
    _expect(error.value, file_name, column, problem)
    assert problem in _prepare_events(tmp_path, config, capsys)


def test_item_table_duplicates_and_null_ids(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = write_table(tmp_path / "log.parquet", GOOD_LOG)
    items = write_table(
        tmp_path / "items.parquet", {"item_id": [10, 11, 10], "category_id": [1, 2, 3]}
    )
    config = EventLogConfig(events=events, items=ItemTableConfig(path=items))
    with pytest.raises(DataError) as error:
        read_event_log(config)
    _expect(error.value, "items.parquet", "item_id", "1 duplicate item id(s), e.g. 10")
    assert "duplicate item id" in _prepare_events(tmp_path, config, capsys)
    write_table(items, {"item_id": [10, None], "category_id": [1, 2]})
    with pytest.raises(DataError) as error:
        read_event_log(config)
    _expect(error.value, "items.parquet", "item_id", "null value")
    write_table(items, {"item_id": [10, 11], "category_id": [1.0, 2.0]})
    with pytest.raises(DataError) as error:
        read_event_log(config)
    _expect(error.value, "items.parquet", "category_id", "wrong dtype")


def _embedding_error(source: EmbeddingSourceConfig) -> DataError:
    with pytest.raises(DataError) as error:
        read_item_embeddings(source, Vocabulary.from_ids(read_embedding_ids(source)))
    return error.value


def test_embedding_bad_input(tmp_path: Path) -> None:
    int8_list = {"item_id": pl.Int64, "embedding": pl.List(pl.Int8)}
    path = tmp_path / "emb.parquet"
    write_table(path, {"item_id": [1, 2, 3], "embedding": [[1, 2], [3, 4, 5], [6, 7]]}, int8_list)
    error = _embedding_error(EmbeddingSourceConfig(path=path))
    _expect(error, "emb.parquet", "embedding", "embedding row 1 (id 2) has length 3, expected 2")
    error = _embedding_error(EmbeddingSourceConfig(path=path, dim=3))
    _expect(error, "emb.parquet", "embedding", "length 2, expected 3")
    write_table(path, {"item_id": [1, 2, 1], "embedding": [[1, 2], [3, 4], [6, 7]]}, int8_list)
    _expect(
        _embedding_error(EmbeddingSourceConfig(path=path)),
        "emb.parquet",
        "item_id",
        "duplicate item id",
    )
    write_table(path, {"item_id": [1, None], "embedding": [[1, 2], [3, 4]]}, int8_list)
    _expect(
        _embedding_error(EmbeddingSourceConfig(path=path)), "emb.parquet", "item_id", "null value"
    )
    write_table(path, {"item_id": [1, 2], "embedding": [["a"], ["b"]]})
    _expect(
        _embedding_error(EmbeddingSourceConfig(path=path)),
        "emb.parquet",
        "embedding",
        "wrong dtype",
    )
    write_table(path, {"item_id": [], "embedding": []}, int8_list)
    _expect(
        _embedding_error(EmbeddingSourceConfig(path=path)), "emb.parquet", None, "file is empty"
    )
    np.save(tmp_path / "vectors.npy", np.zeros((3, 4), dtype=np.float32))
    np.save(tmp_path / "ids.npy", np.array([1, 2]))
    npy = EmbeddingSourceConfig(path=tmp_path / "vectors.npy", ids_path=tmp_path / "ids.npy")
    _expect(
        _embedding_error(npy),
        "vectors.npy",
        None,
        "holds 3 embedding rows but the id file holds 2 ids",
    )
    npy_missing = dataclasses.replace(npy, ids_path=tmp_path / "missing.npy")
    _expect(_embedding_error(npy_missing), "missing.npy", None, "file not found")
    np.save(tmp_path / "ids.npy", np.array([1, 2, 2]))
    _expect(_embedding_error(npy), "ids.npy", "ids", "duplicate item id")
    np.save(tmp_path / "vectors.npy", np.zeros((3,), dtype=np.float32))
    _expect(_embedding_error(npy), "vectors.npy", None, "2-D (N, D) array")


def _rewrite(directory: Path, name: str, change: Callable[[pl.DataFrame], pl.DataFrame]) -> None:
    change(pl.read_parquet(directory / name)).write_parquet(directory / name)


TAOBAO_CASES: dict[
    str, tuple[str, Callable[[pl.DataFrame], pl.DataFrame] | None, str | None, str]
] = {
    "missing file": ("item_features.parquet", None, None, "file not found"),
    "missing column": ("train_samples.parquet", lambda f: f.drop("205"), "205", "missing column"),
    "wrong dtype": (
        "item_features.parquet",
        lambda f: f.with_columns(pl.col("213").cast(pl.Float64)),
        "213",
        "wrong dtype",
    ),
    "empty file": ("test_samples.parquet", lambda f: f.head(0), None, "file is empty"),
    "null ids": (
        "train_samples.parquet",
        lambda f: f.with_columns(
            pl.when(pl.int_range(pl.len()) == 3)
            .then(None)
            .otherwise(pl.col("129_1"))
            .alias("129_1")
        ),
        "129_1",
        "null value",
    ),
    "label outside {0,1}": (
        "test_samples.parquet",
        lambda f: f.with_columns(
            pl.Series("label_0", [[1, 0]] * 4 + [[1, 1]] + [[0, 1]] * 5, dtype=pl.List(pl.Int8))
        ),
        "label_0",
        "e.g. row 4 = [1, 1]",
    ),
    "label not one-hot width": (
        "train_samples.parquet",
        lambda f: f.with_columns(pl.Series("label_0", [[1]] * 10, dtype=pl.List(pl.Int8))),
        "label_0",
        "label outside {0,1}",
    ),
    "duplicate item ids": (
        "item_features.parquet",
        lambda f: pl.concat([f, f.head(1)]),
        "205",
        "duplicate item id",
    ),
    "duplicate user ids": (
        "test_user_features.parquet",
        lambda f: pl.concat([f, f.tail(1)]),
        "129_1",
        "duplicate user id",
    ),
    "embedding row of the wrong length": (
        "scl_embedding_int8_p90.parquet",
        lambda f: f.with_columns(
            pl.when(pl.int_range(pl.len()) == 6)
            .then(pl.col("205_c").list.head(127))
            .otherwise(pl.col("205_c"))
        ),
        "205_c",
        "embedding row 6",
    ),
    "history lists of different lengths": (
        "train_user_features.parquet",
        lambda f: f.with_columns(
            pl.when(pl.int_range(pl.len()) == 2)
            .then(pl.col("151_2_180").list.head(10))
            .otherwise(pl.col("151_2_180"))
        ),
        "151_2_180",
        "row 2 has 1000 behaviour items but 10 categories",
    ),
}


@pytest.mark.parametrize("case", sorted(TAOBAO_CASES))
def test_taobao_mm_bad_input(
    case: str, taobao_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file_name, change, column, problem = TAOBAO_CASES[case]
    if change is None:
        (taobao_copy / file_name).unlink()
    else:
        _rewrite(taobao_copy, file_name, change)
    with pytest.raises(DataError) as error:
        read_taobao_mm(taobao_copy)
    _expect(error.value, file_name, column, problem)
    # An existing dataset at the target survives the failed rewrite untouched.
    target = tmp_path / "out" / "ds"
    target.mkdir(parents=True)
    (target / "manifest.json").write_text("previous")
    code = main(
        [
            "data",
            "prepare",
            "taobao-mm",
            "--input",
            str(taobao_copy),
            "--out",
            str(target),
            "--no-progress",
        ]
    )
    assert code == 2 and problem in capsys.readouterr().err
    assert (target / "manifest.json").read_text() == "previous"
    assert sorted(p.name for p in target.parent.iterdir()) == ["ds"]
