"""Benchmark: build the internal dataset from a synthetic event log (default 50M events).

Writes a seeded synthetic log in parquet chunks (users with heavy-tailed activity, so some exceed
the 100,000-event cap; ~80% click/purchase behaviours, ~20% labelled impressions), an item table
and int8 item embeddings, then runs ``read_event_log`` + ``write_dataset`` and prints wall time,
throughput and the process's peak RSS.

    python benchmarks/event_log_build.py                 # 50M events
    python benchmarks/event_log_build.py --events 2000000 --keep-dir /tmp/bench
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
from tqdm import tqdm

from features.dataset import write_dataset
from features.embedding_reader import EmbeddingSourceConfig
from features.event_log import EventLogConfig, ItemTableConfig, read_event_log

EVENT_TYPES = np.array(["impression", "click", "purchase"])
EVENT_TYPE_WEIGHTS = np.array([0.2, 0.75, 0.05])


def cpu_seconds() -> float:
    """User + system CPU time of this process so far (the machine is shared: wall time is noisy)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_gib() -> float:
    """Peak resident set size of this process so far, in GiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def write_synthetic_log(
    directory: Path, events: int, users: int, items: int, dim: int, chunk: int, seed: int
) -> None:
    """Seeded synthetic log in ``directory/events/part-*.parquet`` plus items.parquet and embeddings."""
    rng = np.random.default_rng(seed)
    # Heavy-tailed activity (Pareto weights) so the busiest users pass the sequence cap.
    activity = rng.pareto(1.2, size=users) + 1.0
    activity /= activity.sum()
    cumulative = np.cumsum(activity)
    user_ids = rng.choice(2**62, size=users, replace=False).astype(np.int64) - 2**61
    item_ids = rng.choice(2**62, size=items, replace=False).astype(np.int64) - 2**61
    item_popularity = np.cumsum(1.0 / np.arange(1, items + 1) ** 0.8)
    item_popularity /= item_popularity[-1]
    start, span = 1_600_000_000, 365 * 86_400
    events_dir = directory / "events"
    events_dir.mkdir(parents=True)
    bar = tqdm(total=events, unit="events", unit_scale=True, desc="write log")
    for part, first in enumerate(range(0, events, chunk)):
        size = min(chunk, events - first)
        chunk_rng = np.random.default_rng([seed, part])
        kinds = chunk_rng.choice(3, size=size, p=EVENT_TYPE_WEIGHTS)
        pl.DataFrame(
            {
                "user_id": user_ids[
                    np.searchsorted(cumulative, chunk_rng.random(size) * cumulative[-1])
                ],
                "item_id": item_ids[np.searchsorted(item_popularity, chunk_rng.random(size))],
                "timestamp": start + chunk_rng.integers(0, span, size=size),
                "event_type": pl.Series(EVENT_TYPES[kinds]).cast(pl.Categorical),
                "label": (chunk_rng.random(size) < 0.12).astype(np.int8),
            }
        ).with_columns(
            # Only impressions carry a label; behaviours leave it null.
            pl.when(pl.col("event_type") == "impression").then(pl.col("label"))
        ).write_parquet(events_dir / f"part-{part:05d}.parquet")
        bar.update(size)
    bar.close()
    pl.DataFrame(
        {
            "item_id": item_ids,
            "category_id": rng.integers(0, 5_000, size=items),
            "brand": rng.integers(0, 50_000, size=items),
        }
    ).write_parquet(directory / "items.parquet")
    embeddings = np.clip(rng.normal(0, 40, size=(items, dim)), -127, 127).astype(np.int8)
    np.save(directory / "embeddings.npy", embeddings)
    np.save(directory / "embedding_ids.npy", item_ids)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000_000)
    parser.add_argument("--users", type=int, default=None, help="default: events / 250")
    parser.add_argument("--items", type=int, default=None, help="default: events / 50, at most 2M")
    parser.add_argument("--dim", type=int, default=64, help="embedding width")
    parser.add_argument("--chunk", type=int, default=5_000_000, help="events per parquet part")
    parser.add_argument("--max-sequence-length", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--keep-dir",
        type=Path,
        default=None,
        help="keep the log and dataset here; a log already there is reused (same --events!)",
    )
    args = parser.parse_args(argv)
    users = args.users or max(args.events // 250, 10)
    items = args.items or min(max(args.events // 50, 100), 2_000_000)

    work = args.keep_dir or Path(tempfile.mkdtemp(prefix="event-log-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        started = time.perf_counter()
        reused = (work / "log").exists()
        if reused:
            print(f"reusing the log in {work / 'log'}")
        else:
            # A child process writes the log, so this process's peak RSS measures the build alone.
            generator = multiprocessing.get_context("spawn").Process(
                target=write_synthetic_log,
                args=(work / "log", args.events, users, items, args.dim, args.chunk, args.seed),
            )
            generator.start()
            generator.join()
            if generator.exitcode != 0:
                raise RuntimeError(f"log generation failed with exit code {generator.exitcode}")
        generated = time.perf_counter() - started
        rss_before_build = peak_rss_gib()

        config = EventLogConfig(
            events=work / "log" / "events",
            max_sequence_length=args.max_sequence_length,
            items=ItemTableConfig(path=work / "log" / "items.parquet", attributes=("brand",)),
            embeddings=EmbeddingSourceConfig(
                path=work / "log" / "embeddings.npy", ids_path=work / "log" / "embedding_ids.npy"
            ),
        )
        started, cpu_started = time.perf_counter(), cpu_seconds()
        parts = read_event_log(config, progress=True)
        read_seconds = time.perf_counter() - started
        write_dataset(parts, work / "dataset")
        build_seconds = time.perf_counter() - started
        build_cpu = cpu_seconds() - cpu_started
        lengths = np.diff(parts.sequence_offsets)
        samples = {split: frame.height for split, frame in parts.samples.items()}
        print(
            f"events in log          {args.events:,} ({users:,} users, {items:,} items, dim {args.dim})"
        )
        if not reused:
            print(f"generation             {generated:.1f} s (separate process)")
        print(f"read_event_log         {read_seconds:.1f} s")
        print(
            f"build incl. write      {build_seconds:.1f} s  ({args.events / build_seconds / 1e6:.2f} M events/s)"
        )
        print(f"build CPU time         {build_cpu:.1f} s (user + system, both cores)")
        print(
            f"peak RSS (build)       {peak_rss_gib():.2f} GiB (before the build: {rss_before_build:.2f} GiB)"
        )
        print(
            f"behaviours kept        {parts.sequence_items.size:,} (longest row {lengths.max():,}, "
            f"{int((lengths == args.max_sequence_length).sum())} users at the cap)"
        )
        print(f"samples                train {samples['train']:,}  test {samples['test']:,}")
    finally:
        if args.keep_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
