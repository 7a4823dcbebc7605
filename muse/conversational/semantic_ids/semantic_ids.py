"""Item embeddings → semantic IDs and their quality report, with the configured quantiser.

Embeddings are cosine-space (NoteLLM-2's, or a user's), so they are L2-normalised first. Building
with kind ``rq_kmeans`` loads no torch; ``rq_vae`` imports its fitting code only when chosen.
"""

from __future__ import annotations

import numpy as np

from muse.conversational.semantic_ids.quantised_items import QuantisedItems
from muse.conversational.semantic_ids.residual_kmeans import (
    fit_residual_kmeans,
    require_distinct_rows,
)
from muse.conversational.semantic_ids.semantic_id_config import QuantiserKind, SemanticIdConfig
from muse.conversational.semantic_ids.semantic_id_map import SemanticIdMap
from muse.conversational.semantic_ids.semantic_id_stats import SemanticIdStats, semantic_id_stats
from muse.item2item.index.similar_item_index import unit_rows


def build_semantic_ids(
    item_ids: np.ndarray,
    embeddings: np.ndarray,
    config: SemanticIdConfig,
    progress: bool = False,
) -> tuple[SemanticIdMap, SemanticIdStats]:
    """Quantise ``embeddings`` (N, D) of ``item_ids`` (N,) into L codes + a collision token each.

    Raises ConfigError (naming codebook_size) with fewer distinct embeddings than codes, and
    ValueError for ids that are not distinct or a row count that differs from the ids'.
    """
    item_ids = np.asarray(item_ids, dtype=np.int64)
    vectors = unit_rows(embeddings)
    if vectors.shape[0] != item_ids.size:
        raise ValueError(f"embeddings must have {item_ids.size} rows, got {vectors.shape[0]}")
    if np.unique(item_ids).size != item_ids.size:
        raise ValueError("item ids must be distinct")
    require_distinct_rows(vectors, config.codebook_size)
    quantised = _quantise(vectors, config, progress)
    id_map = SemanticIdMap.from_codes(
        item_ids, quantised.codes, config.codebook_size, codebooks=quantised.codebooks
    )
    return id_map, semantic_id_stats(id_map, vectors, quantised)


def _quantise(vectors: np.ndarray, config: SemanticIdConfig, progress: bool) -> QuantisedItems:
    if config.kind is QuantiserKind.RQ_KMEANS:
        return fit_residual_kmeans(
            vectors,
            config.levels,
            config.codebook_size,
            config.kmeans_iterations,
            config.seed,
            progress,
        )
    if config.kind is QuantiserKind.RQ_VAE:
        from muse.conversational.training.rq_vae_fitting import fit_rq_vae

        return fit_rq_vae(
            vectors,
            config.levels,
            config.codebook_size,
            config.rq_vae,
            config.kmeans_iterations,
            config.seed,
            progress,
        )
    raise ValueError(f"unhandled quantiser kind {config.kind}")
