"""`muse i2i embed`: embed every catalogue item with a trained item encoder, for the index and ranking."""

from __future__ import annotations

import argparse
from pathlib import Path


def build_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint",
        type=Path,
        required=True,
        help="an item-to-item training checkpoint (RUN/checkpoints/best.pt)",
    )
    parser.add_argument(
        "--dataset",
        type=Path,
        required=True,
        help="catalogue directory whose items.parquet is embedded (the I2I input format)",
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="parquet to write: item_id, embedding"
    )
    parser.add_argument("--batch-size", type=int, default=128, help="items per forward pass")
    parser.add_argument(
        "--device", default="cpu", help="torch device to embed on (default: %(default)s)"
    )


def run(args: argparse.Namespace) -> int:
    import time

    import torch

    from features.item_catalogue import ITEMS_FILE, read_items
    from muse.core.errors import ConfigError
    from muse.item2item.training.item_embeddings import (
        embed_catalogue,
        load_trained_encoder,
        write_item_embeddings,
    )

    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be ≥ 1, got {args.batch_size}")
    started = time.perf_counter()
    trained = load_trained_encoder(args.checkpoint)
    catalogue = read_items(args.dataset / ITEMS_FILE)
    table = embed_catalogue(trained, catalogue, args.batch_size, torch.device(args.device))
    write_item_embeddings(table, args.out)
    rows, width = table.embeddings.shape
    print(
        f"wrote {args.out}: {rows:,} items × {width} ({trained.config.name}) "
        f"in {time.perf_counter() - started:.1f} s"
    )
    return 0
