"""`muse data prepare`: Taobao-MM raw files or a generic event log → the internal dataset format.

muse data prepare taobao-mm --input DIR --out DIR [--set batch_rows=8192]
muse data prepare events --config configs/data/events_example.toml --out DIR [--set k=v]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

SOURCES = ("taobao-mm", "events")


def build_parser(parser: argparse.ArgumentParser) -> None:
    """Subcommands per source kind: ``taobao-mm`` and ``events``."""
    sources = parser.add_subparsers(dest="source", required=True, metavar="{taobao-mm,events}")
    taobao = sources.add_parser(
        "taobao-mm", help="the six Taobao-MM raw-schema parquet files (also the synthetic data)"
    )
    taobao.add_argument(
        "--input", type=Path, required=True, help="directory with the six parquet files"
    )
    events = sources.add_parser(
        "events", help="a generic event log (parquet or CSV) described by a TOML config"
    )
    events.add_argument(
        "--config", type=Path, required=True, help="TOML for features.event_log.EventLogConfig"
    )
    for sub, config_name in ((taobao, "TaobaoMMConfig"), (events, "EventLogConfig")):
        sub.add_argument(
            "--out",
            type=Path,
            required=True,
            help="dataset directory to write (replaced atomically)",
        )
        sub.add_argument(
            "--set",
            dest="overrides",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help=f"override a {config_name} field (dotted keys for nested tables)",
        )
        sub.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    """Read the source, write the dataset atomically, print a short summary.

    Bad input raises DataError or ConfigError before anything is written (`muse` reports it).
    """
    from features.dataset import write_dataset
    from features.event_log import EventLogConfig, read_event_log
    from features.taobao_mm import TaobaoMMConfig, read_taobao_mm
    from muse.core.config_loader import apply_overrides, config_from_dict, load_config

    started = time.perf_counter()
    if args.source == "taobao-mm":
        taobao_config = config_from_dict(
            TaobaoMMConfig, apply_overrides({}, args.overrides, "--set"), "--set"
        )
        parts = read_taobao_mm(args.input, taobao_config, progress=not args.no_progress)
    else:
        event_config = load_config(EventLogConfig, args.config, args.overrides)
        parts = read_event_log(event_config, progress=not args.no_progress)
        parts.source["config_file"] = str(args.config)
    write_dataset(parts, args.out)
    elapsed = time.perf_counter() - started

    users = parts.sequence_offsets.size - 1
    events = parts.sequence_items.size
    print(f"wrote {args.out}")
    print(
        f"  users    {users:,}   behaviour events {events:,}   items {parts.item_embeddings.shape[0] - 2:,}"
    )
    total = positives = 0
    for split, frame in parts.samples.items():
        split_positives = int(frame["label"].sum()) if frame.height else 0
        rate = f"{split_positives / frame.height:.1%}" if frame.height else "n/a"
        print(f"  {split:<8} {frame.height:,} samples, {rate} positive")
        total += frame.height
        positives += split_positives
    rate = f"{positives / total:.1%}" if total else "n/a"
    print(f"  samples  {total:,} in all, {rate} positive")
    print(f"  elapsed  {elapsed:.1f} s ({events / max(elapsed, 1e-9):,.0f} events/s)")
    return 0
