"""Compacted online events: a memory-mapped CSR segment keyed by raw user id.

A segment directory holds ``users.npy`` (S,) int64 raw user ids (sorted), ``offsets.npy`` (S+1,)
int64, ``versions.npy`` (S,) int64 (online events ever accepted per user), one ``<column>.npy``
(E,) per STORE_EVENT_DTYPE field, and ``manifest.json`` (the dataset fingerprint its indices
belong to). Segments are immutable; compaction writes a new one beside the old and renames it
into place, streaming untouched users' rows in blocks so memory stays bounded.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from muse.core.atomic_write import atomic_directory
from muse.core.errors import DataError
from serving.behaviour_store_log import fsync_directory
from serving.behaviour_store_tail import COLUMNS, STORE_EVENT_DTYPE, TailEntry

FORMAT_VERSION = 1


class Segment:
    """Read-only view of a segment (arrays memory-mapped when opened from disk)."""

    def __init__(
        self,
        users: np.ndarray,
        offsets: np.ndarray,
        versions: np.ndarray,
        columns: Mapping[str, np.ndarray],
        fingerprint: str | None,
        path: Path | None = None,
    ) -> None:
        self.users = users
        self.offsets = offsets
        self.versions = versions
        self.columns = dict(columns)
        self.fingerprint = fingerprint
        self.path = path

    @classmethod
    def empty(cls) -> Segment:
        """A segment with no users."""
        columns = {name: np.empty(0, dtype=STORE_EVENT_DTYPE[name]) for name in COLUMNS}
        return cls(
            np.empty(0, np.int64), np.zeros(1, np.int64), np.empty(0, np.int64), columns, None
        )

    @classmethod
    def open(cls, path: str | Path) -> Segment:
        """Memory-map the segment directory ``path``."""
        path = Path(path)
        manifest_path = path / "manifest.json"
        if not manifest_path.is_file():
            raise DataError(manifest_path, "behaviour store segment has no manifest")
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("format_version") != FORMAT_VERSION:
            raise DataError(manifest_path, f"segment format is not version {FORMAT_VERSION}")

        def load(name: str) -> np.ndarray:
            return np.load(path / f"{name}.npy", mmap_mode="r")

        return cls(
            load("users"),
            load("offsets"),
            load("versions"),
            {name: load(name) for name in COLUMNS},
            manifest["dataset_fingerprint"],
            path,
        )

    @property
    def num_users(self) -> int:
        return int(self.users.size)

    @property
    def num_events(self) -> int:
        return int(self.offsets[-1])

    def row(self, user_id: int) -> int:
        """Row of ``user_id``, or -1 when the segment does not hold it."""
        position = int(np.searchsorted(self.users, user_id))
        if position < self.users.size and int(self.users[position]) == user_id:
            return position
        return -1

    def events(self, row: int, column: str) -> np.ndarray:
        """Column ``column`` of the row's events, oldest first (a view)."""
        return self.columns[column][int(self.offsets[row]) : int(self.offsets[row + 1])]


def write_segment(
    target: str | Path,
    users: np.ndarray,
    offsets: np.ndarray,
    versions: np.ndarray,
    columns: Mapping[str, np.ndarray],
    fingerprint: str,
) -> Path:
    """Write a segment from in-memory arrays, atomically."""
    target = Path(target)
    with atomic_directory(target) as staging:
        for name, array in (("users", users), ("offsets", offsets), ("versions", versions)):
            np.save(staging / f"{name}.npy", np.asarray(array, dtype=np.int64))
        for name in COLUMNS:
            np.save(
                staging / f"{name}.npy", np.asarray(columns[name], dtype=STORE_EVENT_DTYPE[name])
            )
        _finish(staging, fingerprint, int(np.asarray(users).size), int(np.asarray(offsets)[-1]))
    fsync_directory(target.parent)
    return target


def merge_segment(
    old: Segment,
    tail: Mapping[int, TailEntry],
    max_length: int,
    target: str | Path,
    fingerprint: str,
) -> Path:
    """Write ``old`` plus the tail's events as a new segment at ``target``, atomically.

    Users the tail touches keep their most recent ``max_length`` events; all other rows are
    copied in contiguous blocks.
    """
    target = Path(target)
    tail_users = np.array(sorted(tail), dtype=np.int64)
    all_users = np.union1d(old.users, tail_users)
    position = np.searchsorted(old.users, all_users)
    in_old = position < old.num_users
    in_old[in_old] = old.users[position[in_old]] == all_users[in_old]
    old_starts = np.zeros(all_users.size, np.int64)
    old_lengths = np.zeros(all_users.size, np.int64)
    old_starts[in_old] = old.offsets[position[in_old]]
    old_lengths[in_old] = old.offsets[position[in_old] + 1] - old_starts[in_old]
    touched = np.searchsorted(all_users, tail_users)
    stored = np.array([tail[int(user)].stored for user in tail_users], dtype=np.int64)
    appended = np.array([tail[int(user)].appended for user in tail_users], dtype=np.int64)
    lengths = old_lengths.copy()
    lengths[touched] = np.minimum(old_lengths[touched] + stored, max_length)
    versions = np.zeros(all_users.size, np.int64)
    versions[in_old] = old.versions[position[in_old]]
    versions[touched] += appended
    offsets = np.zeros(all_users.size + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    total = int(offsets[-1])

    with atomic_directory(target) as staging:
        np.save(staging / "users.npy", all_users)
        np.save(staging / "offsets.npy", offsets)
        np.save(staging / "versions.npy", versions)
        outputs = {
            name: np.lib.format.open_memmap(
                staging / f"{name}.npy", mode="w+", dtype=STORE_EVENT_DTYPE[name], shape=(total,)
            )
            for name in COLUMNS
        }

        def copy_block(first: int, stop: int) -> None:
            # Users first..stop-1 are untouched, hence consecutive rows of ``old``.
            source_start = int(old_starts[first])
            source_stop = int(old_starts[stop - 1] + old_lengths[stop - 1])
            for name in COLUMNS:
                outputs[name][offsets[first] : offsets[stop]] = old.columns[name][
                    source_start:source_stop
                ]

        cursor = 0
        for user, index in zip(tail_users.tolist(), touched.tolist(), strict=True):
            if index > cursor:
                copy_block(cursor, index)
            keep = int(lengths[index])
            start = int(old_starts[index])
            for name in COLUMNS:
                parts = [old.columns[name][start : start + int(old_lengths[index])]]
                parts.extend(chunk[name] for chunk in tail[user].chunks)
                combined = np.concatenate(parts)
                outputs[name][offsets[index] : offsets[index + 1]] = combined[
                    combined.size - keep :
                ]
            cursor = index + 1
        if cursor < all_users.size:
            copy_block(cursor, int(all_users.size))
        for array in outputs.values():
            array.flush()
        outputs.clear()  # release the write maps before the rename
        _finish(staging, fingerprint, int(all_users.size), total)
    fsync_directory(target.parent)
    return target


def _finish(staging: Path, fingerprint: str, num_users: int, num_events: int) -> None:
    manifest = {
        "format_version": FORMAT_VERSION,
        "dataset_fingerprint": fingerprint,
        "num_users": num_users,
        "num_events": num_events,
    }
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    for path in staging.iterdir():
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())
    fsync_directory(staging)
