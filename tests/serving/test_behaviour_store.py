"""The embedded behaviour store: reads, durable appends, replay, compaction, caps, crash safety."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from muse.core.ids import OOV_INDEX
from serving import local_behaviour_store
from serving.behaviour_store import BehaviourEvent, BehaviourStore, UserHistory
from serving.behaviour_store_tail import STORE_EVENT_DTYPE, TailEntry
from serving.errors import InvalidArgument, Overloaded
from serving.local_behaviour_store import LocalBehaviourStore
from serving.local_behaviour_store_config import FsyncPolicy, LocalBehaviourStoreConfig
from tests.dataset_factory import RawDataset, Samples

ROOT = Path(__file__).resolve().parents[2]
ITEM_IDS = np.arange(1000, 2000, dtype=np.int64)  # item raw id 1000 + k has index k + 2
CATEGORY_IDS = np.arange(500, 504, dtype=np.int64)
# Raw user 10: 5 offline events; raw user 11 owns rows 1 (2 events) and 3 (4 events); 12: none.
USER_IDS = np.array([10, 11, 12, 11], dtype=np.int64)
LENGTHS = np.array([5, 2, 0, 4])


def item_index(raw: int) -> int:
    return raw - 1000 + 2


def category_of_item(raw: int) -> int:
    """Category index the fixture gives item ``raw`` (category raw id 500 + k has index k + 2)."""
    return (raw % 4) + 2


def write_fixture_dataset(target: Path, item_ids: np.ndarray = ITEM_IDS) -> Path:
    """Item raw r has category raw 500 + r % 4; the offline behaviours are items 1000, 1007, 1014, …"""
    behaviours = np.split(1000 + 7 * np.arange(LENGTHS.sum()), np.cumsum(LENGTHS)[:-1])
    sample = Samples(users=[0], items=item_ids[:1], labels=[1], history_end=[1], timestamps=[1])
    RawDataset(
        item_ids=item_ids,
        item_categories=500 + item_ids % 4,
        item_embeddings=np.zeros((item_ids.size, 4), dtype=np.float16),
        user_ids=USER_IDS,
        histories=behaviours,
        history_categories=[500 + row % 4 for row in behaviours],  # known even for an OOV item
        vocabularies={"category": CATEGORY_IDS},
        samples={"train": sample, "test": sample},
    ).write(target)
    return target


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_fixture_dataset(tmp_path_factory.mktemp("behaviour") / "dataset")


def open_store(dataset: Path, directory: Path, **options: object) -> LocalBehaviourStore:
    return LocalBehaviourStore(
        LocalBehaviourStoreConfig(dataset=dataset, directory=directory, **options)
    )


def offline_items(user_row: int) -> list[int]:
    start = int(np.sum(LENGTHS[:user_row]))
    return [item_index(1000 + 7 * k) for k in range(start, start + int(LENGTHS[user_row]))]


def clicks(*raw_items: int, start: int = 1_700_000_000) -> list[BehaviourEvent]:
    return [BehaviourEvent(item, start + k) for k, item in enumerate(raw_items)]


def snapshot(store: BehaviourStore, users: list[int]) -> dict[int, tuple[list[int], list[int], int]]:
    return {
        user: (history.items.tolist(), history.categories.tolist(), history.version)
        for user, history in ((u, store.history(u)) for u in users)
    }


def test_offline_histories_and_unknown_users(dataset: Path, tmp_path: Path) -> None:
    with open_store(dataset, tmp_path) as store:
        assert isinstance(store, BehaviourStore)
        history = store.history(10)
        assert isinstance(history, UserHistory)
        assert history.items.tolist() == offline_items(0) and history.version == 0
        assert history.items.dtype == np.int32 and history.categories.dtype == np.int32
        assert history.categories.tolist() == [category_of_item(1000 + 7 * k) for k in range(5)]
        assert store.history(11).items.tolist() == offline_items(3)  # the longer of its two rows
        for unknown in (12, 999, -(2**63)):
            empty = store.history(unknown)
            assert empty.items.size == empty.categories.size == 0 and empty.version == 0


def test_append_then_read_maps_ids_and_bumps_the_version(dataset: Path, tmp_path: Path) -> None:
    with open_store(dataset, tmp_path) as store:
        version = store.append(
            10,
            [
                BehaviourEvent(1005, 1),
                BehaviourEvent(99_999, 2),  # unknown item → OOV item and category
                BehaviourEvent(88_888, 3, category_id=502),  # unknown item, known category
                BehaviourEvent(1006, 4, category_id=7777),  # a named unknown category is OOV
            ],
        )
        history = store.history(10)
        assert version == history.version == 4
        assert history.items.tolist() == [
            *offline_items(0),
            item_index(1005),
            OOV_INDEX,
            OOV_INDEX,
            item_index(1006),
        ]
        assert history.categories.tolist()[-4:] == [
            category_of_item(1005),
            OOV_INDEX,
            2 + 2,
            OOV_INDEX,
        ]
        assert store.append(10, []) == 4
        assert store.append(555, clicks(1001, 1002)) == 2  # a user only known online
        assert store.history(555).items.tolist() == [item_index(1001), item_index(1002)]
        assert store.append(555, clicks(1003)) == 3


def test_replay_after_reopen_restores_histories_and_versions(dataset: Path, tmp_path: Path) -> None:
    users = [10, 11, 555]
    with open_store(dataset, tmp_path) as store:
        for round_number in range(3):
            for user in users:
                store.append(user, clicks(1000 + round_number, 1100 + user % 50))
        before = snapshot(store, users)
    with open_store(dataset, tmp_path) as store:
        assert snapshot(store, users) == before
        assert before[555][2] == 6 and store.append(555, clicks(1999)) == 7


def test_compaction_keeps_content_versions_and_removes_replaced_files(
    dataset: Path, tmp_path: Path
) -> None:
    users = [10, 11, 555, 556, 557]
    with open_store(dataset, tmp_path, compact_after_events=10**9, max_tail_events=10**9) as store:
        for k, user in enumerate(users * 3):
            store.append(user, clicks(1000 + k, 1500 + k))
        before = snapshot(store, users)
        assert store.compact() and not store.compact()  # nothing left to fold the second time
        stats = store.stats()
        assert stats.tail_events == 0 and stats.segment_users == 5 and stats.segment_events == 30
        assert snapshot(store, users) == before
        # A second round touches some users only: the rest are copied from the old segment.
        store.append(556, clicks(1900))
        store.append(999, clicks(1901, 1902))
        after = snapshot(store, [*users, 999])
        assert after[556][2] == before[556][2] + 1 and after[999][2] == 2
        assert store.compact()
        assert snapshot(store, [*users, 999]) == after
    names = sorted(path.name for path in tmp_path.iterdir())
    assert names == ["CURRENT", "LOCK", "log-00000003.bin", "segment-00000002"]
    with open_store(dataset, tmp_path) as store:
        assert snapshot(store, [*users, 999]) == after


def test_histories_are_capped_at_max_length_keeping_the_most_recent(
    dataset: Path, tmp_path: Path
) -> None:
    with open_store(dataset, tmp_path, max_length=6) as store:
        store.append(10, clicks(1100, 1101, 1102))
        expected = [*offline_items(0), item_index(1100), item_index(1101), item_index(1102)][-6:]
        assert store.history(10).items.tolist() == expected
        for k in range(4):
            store.append(777, clicks(1200 + 3 * k, 1201 + 3 * k, 1202 + 3 * k))
        newest = [item_index(1200 + k) for k in range(12)][-6:]
        assert store.history(777).items.tolist() == newest and store.history(777).version == 12
        assert store.stats().tail_events == 6 + 3  # the tail itself never holds more than the cap
        store.compact()
        assert store.history(777).items.tolist() == newest and store.history(777).version == 12
        assert store.stats().segment_events == 9
    with open_store(dataset, tmp_path, max_length=4) as store:
        assert store.history(777).items.tolist() == newest[-4:]


def test_torn_tail_record_is_truncated_not_fatal(dataset: Path, tmp_path: Path) -> None:
    with open_store(dataset, tmp_path) as store:
        store.append(555, clicks(1001))
        store.append(555, clicks(1002, 1003))
    (log,) = tmp_path.glob("log-*.bin")
    intact = log.stat().st_size
    with open(log, "ab") as handle:  # a crash in the middle of writing a record
        handle.write(bytes.fromhex("40000000deadbeef") + bytes(10))
    with open_store(dataset, tmp_path) as store:
        assert store.history(555).items.tolist() == [
            item_index(1001),
            item_index(1002),
            item_index(1003),
        ]
        assert log.stat().st_size == intact
        store.append(555, clicks(1004))
    with open_store(dataset, tmp_path) as store:
        assert store.history(555).version == 4


def test_acknowledged_appends_survive_kill_9(dataset: Path, tmp_path: Path) -> None:
    child = f"""
import sys
from serving.behaviour_store import BehaviourEvent
from serving.local_behaviour_store import LocalBehaviourStore
from serving.local_behaviour_store_config import LocalBehaviourStoreConfig
store = LocalBehaviourStore(LocalBehaviourStoreConfig(
    dataset={str(dataset)!r}, directory={str(tmp_path)!r}, compact_after_events=40))
i = 0
while True:
    store.append(100 + i % 3, [BehaviourEvent(1000 + i, i)])
    print(i, flush=True)
    i += 1
"""
    process = subprocess.Popen(
        [sys.executable, "-c", child],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acknowledged = -1
    deadline = time.monotonic() + 60
    assert process.stdout is not None
    while acknowledged < 150 and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        acknowledged = int(line)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert acknowledged >= 150, process.stderr.read() if process.stderr else ""
    assert (tmp_path / "CURRENT").is_file()  # compactions ran (and one may have been cut short)
    with open_store(dataset, tmp_path) as store:
        for user in (100, 101, 102):
            items = store.history(user).items.tolist()
            acked = [item_index(1000 + i) for i in range(user - 100, acknowledged + 1, 3)]
            assert items[: len(acked)] == acked  # every acknowledged event, in order
            assert store.history(user).version == len(items)


def test_concurrent_appends_reads_and_background_compaction(dataset: Path, tmp_path: Path) -> None:
    writers, per_writer = 4, 60
    errors: list[str] = []
    stop = threading.Event()
    with open_store(dataset, tmp_path, compact_after_events=25) as store:

        def write(writer: int) -> None:
            for k in range(per_writer):
                store.append(300 + writer, clicks(1000 + k))
                store.append(400, [BehaviourEvent(1000 + writer, k)])

        def read() -> None:
            # Online-only users: length always equals the version, whatever compaction is doing.
            while not stop.is_set():
                for user in (300, 301, 400):
                    history = store.history(user)
                    if history.items.size != history.version:
                        errors.append(
                            f"user {user}: {history.items.size} events at version {history.version}"
                        )

        threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
        reader = threading.Thread(target=read)
        reader.start()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        stop.set()
        reader.join()
        assert errors == []
        assert store.stats().compactions >= 2
        expected = {
            300 + w: [item_index(1000 + k) for k in range(per_writer)] for w in range(writers)
        }
        for user, items in expected.items():
            assert store.history(user).items.tolist() == items
        shared = store.history(400)
        assert shared.version == writers * per_writer
        for writer in range(writers):  # each writer's events keep their order in the shared user
            assert (shared.items == item_index(1000 + writer)).sum() == per_writer
        before = snapshot(store, [*expected, 400])
    with open_store(dataset, tmp_path) as store:
        assert snapshot(store, [*expected, 400]) == before


def test_rebuilt_dataset_reindexes_compacted_events_by_raw_id(
    dataset: Path, tmp_path: Path
) -> None:
    with open_store(dataset, tmp_path / "store") as store:
        store.append(555, clicks(1005, 1990))
        store.compact()
        store.append(555, clicks(1006))
    # The new dataset drops items below 1003, so every index shifts by three and 1990 stays known.
    rebuilt = write_fixture_dataset(
        tmp_path / "rebuilt", item_ids=np.arange(1003, 2000, dtype=np.int64)
    )
    with open_store(rebuilt, tmp_path / "store") as store:
        history = store.history(555)
        assert history.items.tolist() == [1005 - 1003 + 2, 1990 - 1003 + 2, 1006 - 1003 + 2]
        assert history.version == 3


def test_bad_input_names_the_field(dataset: Path, tmp_path: Path) -> None:
    with open_store(dataset, tmp_path, max_events_per_append=3) as store:
        cases = [
            (2**63, clicks(1000), "user_id"),
            (1, [BehaviourEvent(1000, -5)], "behaviors[0].timestamp"),
            (1, [BehaviourEvent(1000, 1), BehaviourEvent("x", 1)], "behaviors[1].item_id"),  # type: ignore[arg-type]
            (1, [BehaviourEvent(1000, 1, category_id=2**64)], "behaviors[0].category_id"),
            (1, clicks(1, 2, 3, 4), "behaviors"),
        ]
        for user, events, field in cases:
            with pytest.raises(InvalidArgument) as error:
                store.append(user, events)
            assert error.value.field == field
        assert store.history(1).version == 0  # nothing half-written


def test_appends_pause_when_compaction_falls_behind(dataset: Path, tmp_path: Path) -> None:
    with open_store(dataset, tmp_path, compact_after_events=5, max_tail_events=10) as store:
        with store._compaction_lock:  # a compaction that takes forever
            for k in range(10):
                store.append(600 + k, clicks(1000))
            with pytest.raises(Overloaded):
                store.append(700, clicks(1000))
        deadline = time.monotonic() + 30
        while store.stats().compactions == 0 and time.monotonic() < deadline:
            time.sleep(0.01)  # the background compaction runs once the lock is free
        assert store.stats().tail_events == 0
        assert store.append(700, clicks(1000)) == 1


def test_one_process_per_directory_and_fsync_policy(dataset: Path, tmp_path: Path) -> None:
    with open_store(dataset, tmp_path, fsync=FsyncPolicy.NEVER) as store:
        with pytest.raises(RuntimeError, match="open in another process"):
            open_store(dataset, tmp_path)
        store.append(5, clicks(1000))
    with open_store(dataset, tmp_path) as store:
        assert store.history(5).version == 1


def test_store_modules_never_import_torch() -> None:
    code = (
        "import sys, serving.behaviour_store, serving.local_behaviour_store; "
        "assert 'torch' not in sys.modules and not any(m.startswith('muse.training') for m in sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_tail_entry_keeps_order_few_chunks_and_the_cap() -> None:
    entry = TailEntry()
    for k in range(1000):
        chunk = np.zeros(1 + k % 3, dtype=STORE_EVENT_DTYPE)
        chunk["timestamp"] = np.arange(chunk.size) + 10 * k
        entry.add(chunk, max_length=700)
        assert len(entry.chunks) <= 12  # merged like a binary counter
    timestamps = np.concatenate([chunk["timestamp"] for chunk in entry.chunks])
    assert entry.stored == timestamps.size == 700 and entry.appended == sum(
        1 + k % 3 for k in range(1000)
    )
    assert np.all(np.diff(timestamps) > 0) and timestamps[-1] == 9990


def test_leftovers_of_an_interrupted_compaction_are_ignored_and_removed(
    dataset: Path, tmp_path: Path
) -> None:
    with open_store(dataset, tmp_path) as store:
        store.append(555, clicks(1001, 1002))
        store.compact()  # segment 1; logs from generation 2 on are replayed
        store.append(555, clicks(1003))
        before = snapshot(store, [555])
    live_log = tmp_path / "log-00000002.bin"
    # A crash after switching CURRENT but before deleting: an already-folded log and a new,
    # unreferenced segment (and its staging directory) are still on disk.
    (tmp_path / "log-00000001.bin").write_bytes(live_log.read_bytes())
    (tmp_path / "segment-00000007").mkdir()
    (tmp_path / ".segment-00000008.tmp-x").mkdir()
    with open_store(dataset, tmp_path) as store:
        assert snapshot(store, [555]) == before  # nothing replayed twice
        assert before[555][2] == 3
    names = {path.name for path in tmp_path.iterdir()}
    assert not names & {"log-00000001.bin", "segment-00000007", ".segment-00000008.tmp-x"}


def test_a_failed_compaction_keeps_every_event_visible(
    dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_store(dataset, tmp_path) as store:
        store.append(555, clicks(1001))
        before = snapshot(store, [555])

        def disk_full(*args: object, **kwargs: object) -> None:
            store.append(555, clicks(1002))  # arrives while the compaction runs
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(local_behaviour_store, "merge_segment", disk_full)
        with pytest.raises(OSError):
            store.compact()
        items, _, version = snapshot(store, [555])[555]
        assert items == [*before[555][0], item_index(1002)] and version == 2
        monkeypatch.undo()
        assert store.compact()
        assert snapshot(store, [555])[555][0] == items
    with open_store(dataset, tmp_path) as store:
        history = store.history(555)
        assert history.items.tolist() == items and history.version == 2
