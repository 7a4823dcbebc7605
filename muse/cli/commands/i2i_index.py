"""`muse i2i index`: build the similar-item index bundle the SimilarItems RPC searches."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from muse.core.config_loader import add_override_argument


def build_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--embeddings",
        type=Path,
        required=True,
        help="item embeddings: parquet (item_id + embedding list) or .npy with --ids",
    )
    parser.add_argument(
        "--ids", type=Path, help="item ids of a .npy --embeddings (.npy or parquet)"
    )
    parser.add_argument(
        "--items",
        type=Path,
        help="items.parquet of the catalogue: its category column enables the category filter",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=Path("configs/item2item/index_hnsw.toml"),
        help="index TOML (IndexConfig keys; default: %(default)s)",
    )
    add_override_argument(parser, "kind=exact")
    parser.add_argument(
        "--encoder",
        type=Path,
        help="the encoder bundle (muse i2i export) that made the embeddings: the index names it, "
        "so the server embeds new items with it; keep it beside the index bundle",
    )
    parser.add_argument("--out", type=Path, required=True, help="bundle directory to write")


def _encoder_entry(encoder: Path, dim: int) -> dict[str, str]:
    """The index manifest's entry naming encoder bundle ``encoder``; it must embed to ``dim``."""
    from muse.core.errors import DataError
    from muse.export.bundle_format import MANIFEST_FILE
    from muse.item2item.export.encoder_bundle_layout import encoder_recipe, read_encoder_manifest

    manifest = read_encoder_manifest(encoder)
    width = encoder_recipe(manifest, encoder).output_dim
    if width != dim:
        raise DataError(
            encoder / MANIFEST_FILE,
            f"the encoder embeds to width {width}, but the embeddings have width {dim}",
        )
    return {"name": encoder.resolve().name, "version": str(manifest["version"])}


def run(args: argparse.Namespace) -> int:
    import time

    import numpy as np

    from features.embedding_reader import (
        EmbeddingSourceConfig,
        EmbeddingStorage,
        read_embedding_ids,
        read_item_embeddings,
    )
    from features.item_catalogue import read_item_categories
    from features.vocabulary import Vocabulary
    from muse.core.config_loader import load_config
    from muse.core.ids import FIRST_ID_INDEX
    from muse.item2item.export.encoder_bundle_layout import INDEX_ENCODER_ENTRY
    from muse.item2item.index.index_bundle import write_index_bundle
    from muse.item2item.index.index_config import IndexConfig
    from muse.item2item.index.similar_item_index import SimilarItemIndex

    config = load_config(IndexConfig, args.config, args.overrides)
    started = time.perf_counter()
    # float16 keeps three significant digits of each component: ample to rank by cosine.
    source = EmbeddingSourceConfig(
        path=args.embeddings, ids_path=args.ids, storage=EmbeddingStorage.FLOAT16
    )
    vocabulary = Vocabulary.from_ids(read_embedding_ids(source))
    embeddings = read_item_embeddings(source, vocabulary)
    item_ids = vocabulary.raw_ids
    vectors = np.asarray(embeddings.table[FIRST_ID_INDEX:], dtype=np.float32)
    # The encoder is checked before the (possibly long) build.
    encoder = _encoder_entry(args.encoder, vectors.shape[1]) if args.encoder is not None else None
    codes = np.zeros(item_ids.size, dtype=np.int64)
    names: tuple[str, ...] = ()
    if args.items is not None:
        codes, names = read_item_categories(args.items, item_ids)
    index = SimilarItemIndex.build(config, item_ids, vectors, codes, names)
    extra: dict[str, Any] = {
        "embeddings": str(args.embeddings.resolve()),
        "items": str(args.items.resolve()) if args.items is not None else None,
    }
    if encoder is not None:
        extra[INDEX_ENCODER_ENTRY] = encoder
    manifest = write_index_bundle(index, args.out, extra=extra)
    recall = manifest["recall_against_exact"]
    print(
        f"wrote {args.out} ({manifest['version']}): {index.size:,} items of width {index.dim}, "
        f"{config.kind.value} index, recall@{recall['k']} against exact search "
        f"{recall['recall']:.4f} over {recall['queries']:,} items, "
        f"{time.perf_counter() - started:.1f} s"
    )
    return 0
