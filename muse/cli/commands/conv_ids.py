"""`muse conv ids`: quantise item embeddings into semantic IDs (the generative retriever's targets)."""

from __future__ import annotations

import argparse
from pathlib import Path

from muse.core.config_loader import add_override_argument

STATS_FILE = "stats.json"


def build_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--embeddings",
        type=Path,
        required=True,
        help="item embeddings (muse i2i embed's parquet: item_id + embedding), or .npy with --ids",
    )
    parser.add_argument(
        "--ids", type=Path, help="item ids of a .npy --embeddings (.npy or parquet)"
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=Path("configs/conversational/semantic_ids.toml"),
        help="semantic ID TOML (SemanticIdConfig keys; default: %(default)s)",
    )
    add_override_argument(parser, "kind=rq_vae")
    parser.add_argument(
        "--out", type=Path, required=True, help="directory to write: the ID map and stats.json"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import json
    import time

    import numpy as np

    from features.embedding_reader import (
        EmbeddingSourceConfig,
        EmbeddingStorage,
        read_embedding_ids,
        read_item_embeddings,
    )
    from features.vocabulary import Vocabulary
    from muse.conversational.semantic_ids.semantic_id_config import SemanticIdConfig
    from muse.conversational.semantic_ids.semantic_ids import build_semantic_ids
    from muse.core.atomic_write import atomic_directory
    from muse.core.config_loader import config_to_dict, load_config
    from muse.core.errors import ConfigError
    from muse.core.ids import FIRST_ID_INDEX

    config = load_config(SemanticIdConfig, args.config, args.overrides)
    started = time.perf_counter()
    source = EmbeddingSourceConfig(
        path=args.embeddings, ids_path=args.ids, storage=EmbeddingStorage.FLOAT16
    )
    vocabulary = Vocabulary.from_ids(read_embedding_ids(source))
    embeddings = read_item_embeddings(source, vocabulary)
    vectors = np.asarray(embeddings.table[FIRST_ID_INDEX:], dtype=np.float32)
    try:
        id_map, stats = build_semantic_ids(
            vocabulary.raw_ids, vectors, config, progress=not args.no_progress
        )
    except ConfigError as error:
        raise ConfigError(f"{args.embeddings}: {error}") from error  # name the data it misfits
    extra = {"config": config_to_dict(config), "embeddings": str(args.embeddings.resolve())}
    with atomic_directory(args.out) as staging:
        id_map.save(staging, extra=extra)
        (staging / STATS_FILE).write_text(json.dumps(stats.as_json(), indent=2) + "\n")
    usage = ", ".join(f"{value:.3f}" for value in stats.codebook_usage)
    perplexity = ", ".join(f"{value:.1f}" for value in stats.perplexity)
    print(
        f"wrote {args.out}: {stats.items:,} items → {stats.levels} × {stats.codebook_size} codes "
        f"+ collision token ({config.kind.value}, vocabulary {id_map.vocab_size:,} tokens) "
        f"in {time.perf_counter() - started:.1f} s\n"
        f"  codebook usage per level: {usage}; perplexity: {perplexity}\n"
        f"  distinct IDs {stats.distinct_ids:,}; collision rate {stats.collision_rate:.4f}; "
        f"largest collision group {stats.largest_collision_group}\n"
        f"  reconstruction MSE {stats.reconstruction_mse:.6f} "
        f"(relative {stats.relative_reconstruction_error:.4f})"
    )
    return 0
