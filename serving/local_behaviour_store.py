"""The embedded behaviour store: offline sequences + compacted segment + in-memory tail + log.

A history is read as the concatenation, oldest first, of

1. the user's offline sequence in the prepared dataset (memory-mapped CSR, never copied in RAM);
2. the user's row in the current compacted segment (memory-mapped) of earlier online events;
3. the in-memory tail: online events appended since the last compaction (a second, frozen
   tail exists while a compaction runs);

keeping the most recent ``max_length`` events. Every append is first written to the log
(``log-<generation>.bin``) and fsynced (group commit) before it returns; on open the store
replays the logs not yet folded into the segment, truncating a torn last record. Compaction runs
on a background thread once the tail grows past a threshold: it rotates the log, merges the
frozen tail into a new segment written beside the old one, then switches the ``CURRENT`` file
(atomic rename) to the new segment and the first log generation still to replay, and only then
deletes what it replaced. Readers switch under the lock, so they see either the old segment plus
the frozen tail or the new segment, never a half state.

Raw user ids map to dataset rows through ``users.parquet`` (a raw id owning several rows uses
its longest); raw item ids through the item vocabulary (unknown items → OOV index 1) and items'
categories through the item table, unless an event names its category.

Thread safety: every public method may be called from any thread. ``append`` blocks on disk
(write + fsync, milliseconds), so async servers should call it through a thread pool
(``asyncio.to_thread``); ``history`` does no writes but may fault in memory-mapped pages.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import re
import shutil
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from features.dataset import Dataset
from muse.core.atomic_write import atomic_file
from muse.core.ids import OOV_INDEX, PADDING_INDEX
from serving.behaviour_store import BehaviourEvent, UserHistory
from serving.behaviour_store_log import (
    LOG_EVENT_DTYPE,
    BehaviourLogFile,
    encode_record,
    fsync_directory,
    read_log,
    truncate_log,
)
from serving.behaviour_store_segment import Segment, merge_segment, write_segment
from serving.behaviour_store_tail import COLUMNS, STORE_EVENT_DTYPE, TailEntry
from serving.errors import InvalidArgument, Overloaded, StoreInUse
from serving.local_behaviour_store_config import FsyncPolicy, LocalBehaviourStoreConfig

LOGGER = logging.getLogger(__name__)
STATE_FILE = "CURRENT"
LOCK_FILE = "LOCK"
_LOG_NAME = re.compile(r"^log-(\d{8})\.bin$")
_SEGMENT_NAME = re.compile(r"^segment-(\d{8})$")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


class BehaviourStoreStats(NamedTuple):
    """Sizes for metrics and tests."""

    tail_events: int
    tail_users: int
    segment_users: int
    segment_events: int
    log_bytes: int
    compactions: int


class _State(NamedTuple):
    segment_number: int  # 0: no segment yet
    log_generation: int  # logs with this generation or later are replayed


class LocalBehaviourStore:
    """Embedded, durable :class:`serving.behaviour_store.BehaviourStore` on local disk."""

    def __init__(self, config: LocalBehaviourStoreConfig) -> None:
        self.config = config
        self.directory = Path(config.directory)
        # The offline dataset first: a bad dataset path fails before anything is created.
        self._load_dataset()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_handle = open(self.directory / LOCK_FILE, "a+b")  # noqa: SIM115 (held until close)
        try:
            fcntl.flock(self._lock_handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_handle.close()
            raise StoreInUse(
                f"{self.directory}: behaviour store is open in another process"
            ) from None
        self._lock = threading.Lock()
        self._compaction_lock = threading.Lock()
        self._segment: Segment
        self._log: BehaviourLogFile
        self._state: _State
        self._tail: dict[int, TailEntry] = {}
        self._frozen: dict[int, TailEntry] = {}
        self._tail_events = 0
        self._compactions = 0
        self._closed = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        try:
            self._recover()
        except BaseException:
            self._lock_handle.close()
            raise
        self._thread = threading.Thread(
            target=self._compaction_loop, name="behaviour-compaction", daemon=True
        )
        self._thread.start()
        if self._needs_compaction():
            self._wake.set()

    # ----------------------------------------------------------------------------- reads

    def history(self, user_id: int) -> UserHistory:
        """The user's most recent ``max_length`` events; unknown users get empty arrays, version 0."""
        user_id = _int64("user_id", user_id)
        with self._lock:
            if self._closed:
                raise RuntimeError("behaviour store is closed")
            segment = self._segment
            chunks: list[np.ndarray] = []
            version = 0
            for tail in (self._frozen, self._tail):
                entry = tail.get(user_id)
                if entry is not None:
                    chunks.extend(entry.chunks)
                    version += entry.appended
        parts: list[tuple[np.ndarray, np.ndarray]] = []
        row = self._offline_row(user_id)
        if row >= 0:
            parts.append(self._dataset.history(row))
        segment_row = segment.row(user_id)
        if segment_row >= 0:
            parts.append(
                (segment.events(segment_row, "item"), segment.events(segment_row, "category"))
            )
            version += int(segment.versions[segment_row])
        parts.extend((chunk["item"], chunk["category"]) for chunk in chunks)
        items, categories = _last(parts, self.config.max_length)
        return UserHistory(items, categories, version)

    def stats(self) -> BehaviourStoreStats:
        """Current sizes of the tail, segment and live log."""
        with self._lock:
            return BehaviourStoreStats(
                tail_events=self._tail_events + sum(e.stored for e in self._frozen.values()),
                tail_users=len(self._tail.keys() | self._frozen.keys()),
                segment_users=self._segment.num_users,
                segment_events=self._segment.num_events,
                log_bytes=self._log.size,
                compactions=self._compactions,
            )

    # ---------------------------------------------------------------------------- writes

    def append(self, user_id: int, events: Sequence[BehaviourEvent]) -> int:
        """Durably add ``events`` (oldest first) to the user's history; returns the new version."""
        user_id = _int64("user_id", user_id)
        if len(events) > self.config.max_events_per_append:
            raise InvalidArgument(
                "behaviors",
                f"at most {self.config.max_events_per_append} per call, got {len(events)}",
            )
        raw = np.zeros(len(events), dtype=LOG_EVENT_DTYPE)
        for position, event in enumerate(events):
            raw[position] = (
                _int64(f"behaviors[{position}].item_id", event.item_id),
                _int64(f"behaviors[{position}].timestamp", event.timestamp, minimum=0),
                0
                if event.category_id is None
                else _int64(f"behaviors[{position}].category_id", event.category_id),
                event.category_id is not None,
            )
        chunk = self._index_events(raw)
        record = encode_record(user_id, raw)
        with self._lock:
            if self._closed:
                raise RuntimeError("behaviour store is closed")
            if raw.size == 0:
                return self._version_locked(user_id)
            if self._tail_events >= self.config.max_tail_events:
                raise Overloaded("behaviour store: compaction is behind, appends are paused")
            log = self._log
            end = log.write(record)
            entry = self._tail.setdefault(user_id, TailEntry())
            before = entry.stored
            entry.add(chunk, self.config.max_length)
            self._tail_events += entry.stored - before
            version = self._version_locked(user_id)
            compact = self._needs_compaction_locked()
        if self.config.fsync is FsyncPolicy.ALWAYS:
            log.sync(end)
        if compact:
            self._wake.set()
        return version

    def compact(self) -> bool:
        """Fold the in-memory tail into a new segment now; False when there was nothing to fold."""
        with self._compaction_lock:
            with self._lock:
                if self._closed or not self._tail:
                    return False
                old_log = self._log
                self._log = BehaviourLogFile(
                    self._log_path(old_log.generation + 1), old_log.generation + 1
                )
                frozen, self._frozen = self._tail, self._tail
                self._tail = {}
                self._tail_events = 0
                old_segment = self._segment
            try:
                old_log.close()
                number = self._next_segment_number()
                target = self.directory / _segment_name(number)
                merge_segment(
                    old_segment, frozen, self.config.max_length, target, self._fingerprint
                )
                new_segment = Segment.open(target)
                self._write_state(_State(number, self._log.generation))
            except BaseException:
                self._unfreeze(frozen)
                raise
            with self._lock:
                self._segment = new_segment
                self._frozen = {}
                self._compactions += 1
            self._remove_stale()
            return True

    def close(self) -> None:
        """Stop compaction, fsync and close the log, release the directory; idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._stop.set()
        self._wake.set()
        self._thread.join()
        with self._compaction_lock:  # a compact() called from another thread finishes first
            try:
                self._log.close()
            finally:
                self._lock_handle.close()

    def __enter__(self) -> LocalBehaviourStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------------- internals

    def _load_dataset(self) -> None:
        dataset = Dataset(self.config.dataset)
        self._dataset = dataset
        self._fingerprint = hashlib.sha256(
            (dataset.root / "manifest.json").read_bytes()
        ).hexdigest()
        self._item_vocabulary = dataset.vocabulary("item")
        self._category_vocabulary = dataset.vocabulary("category")
        items = dataset.items()
        item_category = np.full(len(self._item_vocabulary), OOV_INDEX, dtype=np.int32)
        item_category[PADDING_INDEX] = PADDING_INDEX
        item_category[items["item_index"].to_numpy()] = items["category_index"].to_numpy()
        self._item_category = item_category
        users = dataset.users().select("user_index", "user_id")
        rows = users["user_index"].to_numpy().astype(np.int64)
        raw = users["user_id"].to_numpy().astype(np.int64)
        offsets = np.asarray(dataset.sequence_offsets)
        lengths = offsets[rows + 1] - offsets[rows]
        # Sorted by raw id, then length: the last row of each raw id is its longest.
        order = np.lexsort((rows, lengths, raw))
        raw, rows = raw[order], rows[order]
        last = np.append(raw[1:] != raw[:-1], True)
        self._user_ids = raw[last]
        self._user_rows = rows[last]

    def _offline_row(self, user_id: int) -> int:
        position = int(np.searchsorted(self._user_ids, user_id))
        if position < self._user_ids.size and int(self._user_ids[position]) == user_id:
            return int(self._user_rows[position])
        return -1

    def _index_events(self, raw: np.ndarray) -> np.ndarray:
        events = np.empty(raw.size, dtype=STORE_EVENT_DTYPE)
        events["item"] = self._item_vocabulary.lookup(raw["item_id"])
        named = raw["has_category"].astype(bool)
        events["category"] = np.where(
            named,
            self._category_vocabulary.lookup(raw["category_id"]),
            self._item_category[events["item"]],
        )
        events["timestamp"] = raw["timestamp"]
        events["item_id"] = raw["item_id"]
        events["category_id"] = raw["category_id"]
        events["has_category"] = named
        return events

    def _recover(self) -> None:
        self._state = self._read_state()
        self._remove_stale()
        segment = Segment.empty()
        if self._state.segment_number:
            segment = Segment.open(self.directory / _segment_name(self._state.segment_number))
        if segment.num_users and segment.fingerprint != self._fingerprint:
            segment = self._reindex(segment)
        self._segment = segment
        generations = self._log_generations()
        for generation in generations:
            self._replay(self._log_path(generation))
        next_generation = max([self._state.log_generation - 1, *generations]) + 1
        self._log = BehaviourLogFile(self._log_path(next_generation), next_generation)

    def _replay(self, path: Path) -> None:
        contents = read_log(path)
        if contents.valid_bytes < contents.file_bytes:
            LOGGER.warning(
                "behaviour log %s: dropping a torn or corrupt tail of %d bytes",
                path,
                contents.file_bytes - contents.valid_bytes,
            )
            truncate_log(path, contents.valid_bytes)
        if not contents.records:
            return
        events = self._index_events(np.concatenate([record.events for record in contents.records]))
        start = 0
        for record in contents.records:
            chunk = events[start : start + record.events.size]
            start += record.events.size
            entry = self._tail.setdefault(record.user_id, TailEntry())
            before = entry.stored
            entry.add(chunk, self.config.max_length)
            self._tail_events += entry.stored - before

    def _reindex(self, segment: Segment) -> Segment:
        # The dataset was rebuilt: recompute indices from the raw ids the segment keeps.
        LOGGER.warning(
            "behaviour store: dataset changed, re-indexing %d online events", segment.num_events
        )
        raw = np.zeros(segment.num_events, dtype=LOG_EVENT_DTYPE)
        for name in ("item_id", "timestamp", "category_id", "has_category"):
            raw[name] = segment.columns[name]
        events = self._index_events(raw)
        number = self._next_segment_number()
        target = self.directory / _segment_name(number)
        write_segment(
            target,
            segment.users,
            segment.offsets,
            segment.versions,
            {name: events[name] for name in COLUMNS},
            self._fingerprint,
        )
        self._write_state(_State(number, self._state.log_generation))
        self._remove_stale()
        return Segment.open(target)

    def _unfreeze(self, frozen: dict[int, TailEntry]) -> None:
        # A failed compaction: the frozen events go back in front of what arrived since.
        with self._lock:
            for user_id, entry in frozen.items():
                later = self._tail.get(user_id)
                if later is not None:
                    entry.extend(later, self.config.max_length)
                self._tail[user_id] = entry
            self._frozen = {}
            self._tail_events = sum(entry.stored for entry in self._tail.values())

    def _version_locked(self, user_id: int) -> int:
        version = sum(
            tail[user_id].appended for tail in (self._frozen, self._tail) if user_id in tail
        )
        row = self._segment.row(user_id)
        return version + (int(self._segment.versions[row]) if row >= 0 else 0)

    def _needs_compaction(self) -> bool:
        with self._lock:
            return self._needs_compaction_locked()

    def _needs_compaction_locked(self) -> bool:
        return (
            self._tail_events >= self.config.compact_after_events
            or self._log.size >= self.config.compact_after_log_bytes
        )

    def _compaction_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            if self._stop.is_set():
                return
            if not self._needs_compaction():
                continue
            try:
                self.compact()
            except Exception:
                LOGGER.exception("behaviour store: compaction failed; retrying later")
                self._stop.wait(5.0)
                self._wake.set()

    def _read_state(self) -> _State:
        path = self.directory / STATE_FILE
        if not path.is_file():
            return _State(0, 1)
        state = json.loads(path.read_text())
        return _State(int(state["segment_number"]), int(state["log_generation"]))

    def _write_state(self, state: _State) -> None:
        text = json.dumps(
            {"segment_number": state.segment_number, "log_generation": state.log_generation}
        )
        with atomic_file(self.directory / STATE_FILE) as staging:
            staging.write_text(text + "\n")
        fsync_directory(self.directory)
        self._state = state

    def _next_segment_number(self) -> int:
        # Never reuse a name still on disk, even one a failed switch left behind.
        found = (_SEGMENT_NAME.match(path.name) for path in self.directory.iterdir())
        return max([self._state.segment_number, *(int(m.group(1)) for m in found if m)]) + 1

    def _log_generations(self) -> list[int]:
        found = (_LOG_NAME.match(path.name) for path in self.directory.iterdir())
        return sorted(
            g for g in (int(m.group(1)) for m in found if m) if g >= self._state.log_generation
        )

    def _log_path(self, generation: int) -> Path:
        return self.directory / f"log-{generation:08d}.bin"

    def _remove_stale(self) -> None:
        # Files a finished (or crashed) compaction replaced; CURRENT no longer points at them.
        current = _segment_name(self._state.segment_number)
        for path in self.directory.iterdir():
            log = _LOG_NAME.match(path.name)
            if log and int(log.group(1)) < self._state.log_generation:
                path.unlink(missing_ok=True)
            elif (_SEGMENT_NAME.match(path.name) and path.name != current) or path.name.startswith(
                (".segment-", f".{STATE_FILE}.")
            ):
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)


def _segment_name(number: int) -> str:
    return f"segment-{number:08d}"


def _int64(field: str, value: object, minimum: int = _INT64_MIN) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InvalidArgument(field, f"must be an integer, got {type(value).__name__}")
    number = int(value)
    if not minimum <= number <= _INT64_MAX:
        raise InvalidArgument(field, f"must be in [{minimum}, {_INT64_MAX}], got {number}")
    return number


def _last(
    parts: list[tuple[np.ndarray, np.ndarray]], max_length: int
) -> tuple[np.ndarray, np.ndarray]:
    """The last ``max_length`` events of the concatenated (items, categories) parts."""
    parts = [part for part in parts if part[0].size]
    if not parts:
        return np.empty(0, np.int32), np.empty(0, np.int32)
    if len(parts) == 1:
        items, categories = parts[0]
        return np.asarray(items[-max_length:]), np.asarray(categories[-max_length:])
    needed = max_length
    kept: list[tuple[np.ndarray, np.ndarray]] = []
    for items, categories in reversed(parts):
        if needed <= 0:
            break
        kept.append((items[-needed:], categories[-needed:]))
        needed -= min(needed, items.size)
    kept.reverse()
    return (
        np.concatenate([items for items, _ in kept]).astype(np.int32, copy=False),
        np.concatenate([categories for _, categories in kept]).astype(np.int32, copy=False),
    )
