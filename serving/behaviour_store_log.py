"""The behaviour store's append-only log: length-prefixed, CRC-checked records, fsynced on append.

File layout::

    header   8 bytes magic b"MUSEBLOG" + uint32 format version
    record   uint32 length | uint32 crc32(length bytes + payload) | payload (length bytes)
    payload  int64 user_id | uint32 count | count × (int64 item_id, int64 timestamp,
             int64 category_id, uint8 has_category)                 (little-endian, packed)

One record per append call, so an append is in the log whole or not at all. A failed write is
cut back off the file before the error is raised, so only the last record can ever be torn (a
crash mid-write); :func:`read_log` stops at the first record that is short or fails its CRC and
reports the valid length, which the store truncates to.
"""

from __future__ import annotations

import os
import struct
import threading
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

from muse.core.errors import DataError

MAGIC = b"MUSEBLOG"
FORMAT_VERSION = 1
HEADER = MAGIC + struct.pack("<I", FORMAT_VERSION)
LOG_EVENT_DTYPE = np.dtype(
    [("item_id", "<i8"), ("timestamp", "<i8"), ("category_id", "<i8"), ("has_category", "u1")]
)
_RECORD_HEAD = struct.Struct("<II")
_PAYLOAD_HEAD = struct.Struct("<qI")
# Far above any allowed append; a larger length field can only be garbage.
MAX_RECORD_BYTES = 64 * 1024 * 1024


class LogRecord(NamedTuple):
    """One append: the user and its events (a LOG_EVENT_DTYPE array, oldest first)."""

    user_id: int
    events: np.ndarray


class LogContents(NamedTuple):
    """Records of a log file, the length of its valid prefix and the file's length."""

    records: list[LogRecord]
    valid_bytes: int
    file_bytes: int


def encode_record(user_id: int, events: np.ndarray) -> bytes:
    """Bytes of one record for ``user_id`` and a LOG_EVENT_DTYPE array."""
    payload = (
        _PAYLOAD_HEAD.pack(user_id, events.size)
        + events.astype(LOG_EVENT_DTYPE, copy=False).tobytes()
    )
    length = struct.pack("<I", len(payload))
    return length + struct.pack("<I", zlib.crc32(payload, zlib.crc32(length))) + payload


def read_log(path: str | Path) -> LogContents:
    """Every intact record of ``path``, stopping at the first torn or corrupt one."""
    data = Path(path).read_bytes()
    if len(data) < len(HEADER):
        return LogContents([], 0, len(data))  # crashed while creating the file
    if data[: len(MAGIC)] != MAGIC:
        raise DataError(path, "not a behaviour log (bad magic)")
    if data[: len(HEADER)] != HEADER:
        raise DataError(path, f"behaviour log format is not version {FORMAT_VERSION}")
    records = []
    position = len(HEADER)
    view = memoryview(data)
    while position + _RECORD_HEAD.size <= len(data):
        length, crc = _RECORD_HEAD.unpack_from(data, position)
        start = position + _RECORD_HEAD.size
        if length < _PAYLOAD_HEAD.size or length > MAX_RECORD_BYTES or start + length > len(data):
            break
        payload = view[start : start + length]
        if zlib.crc32(payload, zlib.crc32(data[position : position + 4])) != crc:
            break
        user_id, count = _PAYLOAD_HEAD.unpack_from(payload, 0)
        if _PAYLOAD_HEAD.size + count * LOG_EVENT_DTYPE.itemsize != length:
            break
        events = np.frombuffer(
            payload, dtype=LOG_EVENT_DTYPE, count=count, offset=_PAYLOAD_HEAD.size
        )
        records.append(LogRecord(user_id, events.copy()))
        position = start + length
    return LogContents(records, position, len(data))


def truncate_log(path: str | Path, valid_bytes: int) -> None:
    """Cut ``path`` to its valid prefix (rewriting the header when even that was torn)."""
    with open(path, "r+b") as handle:
        if valid_bytes < len(HEADER):
            handle.truncate(0)
            handle.write(HEADER)
        else:
            handle.truncate(valid_bytes)
        handle.flush()
        os.fsync(handle.fileno())


def fsync_directory(directory: str | Path) -> None:
    """Make renames and new files in ``directory`` durable."""
    handle = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


class BehaviourLogFile:
    """One log file open for appending.

    :meth:`write` must be called under the store's lock (it orders records); :meth:`sync` is
    called after releasing it, and concurrent callers share one fsync (group commit).
    """

    def __init__(self, path: str | Path, generation: int) -> None:
        self.path = Path(path)
        self.generation = generation
        existed = self.path.exists()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._written = os.fstat(self._fd).st_size
        if self._written == 0:
            os.write(self._fd, HEADER)
            self._written = len(HEADER)
            os.fsync(self._fd)
        if not existed:
            fsync_directory(self.path.parent)
        self._synced = self._written
        self._sync_lock = threading.Lock()
        self._closed = False
        self._broken: str | None = None

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self._written

    def write(self, record: bytes) -> int:
        """Append ``record`` (not yet durable); returns the file offset it ends at."""
        if self._broken is not None:
            raise OSError(f"{self.path}: log unusable after an earlier failure: {self._broken}")
        if self._closed:
            raise OSError(f"{self.path}: log is closed")
        start = self._written
        try:
            view = memoryview(record)
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as error:
            try:
                os.ftruncate(self._fd, start)
            except OSError:
                self._broken = str(error)
            raise
        self._written = start + len(record)
        return self._written

    def sync(self, offset: int) -> None:
        """Return once every byte before ``offset`` is on stable storage."""
        with self._sync_lock:
            if self._broken is not None:
                raise OSError(f"{self.path}: fsync failed earlier: {self._broken}")
            if self._closed or self._synced >= offset:
                return  # close() fsynced everything, or another caller's fsync covered us
            target = self._written
            try:
                os.fsync(self._fd)
            except OSError as error:
                # After a failed fsync the page cache state is unknown: refuse further appends.
                self._broken = str(error)
                raise
            self._synced = target

    def close(self) -> None:
        """fsync and close; idempotent."""
        with self._sync_lock:
            if self._closed:
                return
            try:
                os.fsync(self._fd)
            except OSError as error:
                self._broken = str(error)
                raise
            finally:
                self._closed = True
                os.close(self._fd)
