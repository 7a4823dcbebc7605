"""How good a set of semantic IDs is: codebook usage, collisions, reconstruction error.

A generative retriever trained on collapsed codebooks or heavily colliding IDs recalls nothing,
so ``muse conv ids`` reports these beside the map. Imports no torch.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from muse.conversational.semantic_ids.quantised_items import QuantisedItems
from muse.conversational.semantic_ids.semantic_id_map import SemanticIdMap


class SemanticIdStats(NamedTuple):
    """Quality of N items' semantic IDs of L levels × K codes.

    codebook_usage[ℓ]: fraction of level ℓ's K codes some item uses. perplexity[ℓ]: exp of the
    entropy of level ℓ's code distribution (K when uniform, 1 when collapsed on one code).
    collision_rate: fraction of items whose L-code another item shares. largest_collision_group:
    most items sharing one L-code. distinct_ids: distinct L-codes (before the collision token).
    reconstruction_mse: mean squared error per element between each unit embedding and its
    reconstruction from its codewords; relative_reconstruction_error: Σ‖x − x̂‖² / Σ‖x‖².
    level_reconstruction_mse[ℓ]: the MSE with only the first ℓ + 1 levels.
    """

    items: int
    levels: int
    codebook_size: int
    codebook_usage: tuple[float, ...]
    perplexity: tuple[float, ...]
    collision_rate: float
    largest_collision_group: int
    distinct_ids: int
    reconstruction_mse: float
    relative_reconstruction_error: float
    level_reconstruction_mse: tuple[float, ...]

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples as lists)."""
        return {
            name: list(value) if isinstance(value, tuple) else value
            for name, value in self._asdict().items()
        }


def semantic_id_stats(
    id_map: SemanticIdMap, embeddings: np.ndarray, quantised: QuantisedItems
) -> SemanticIdStats:
    """The stats of ``id_map``, built from ``quantised`` for ``embeddings`` (N, D) unit rows."""
    codes = id_map.codes
    usage, perplexity = [], []
    for level in range(id_map.levels):
        counts = np.bincount(codes[:, level], minlength=id_map.codebook_size)
        usage.append(float(np.count_nonzero(counts)) / id_map.codebook_size)
        shares = counts[counts > 0] / max(id_map.size, 1)
        perplexity.append(float(np.exp(-(shares * np.log(shares)).sum())))
    if id_map.size:
        _, inverse, group_sizes = np.unique(codes, axis=0, return_inverse=True, return_counts=True)
        shared = group_sizes[inverse.reshape(-1)] > 1
        collision_rate = float(shared.mean())
        largest, distinct = int(group_sizes.max()), int(group_sizes.size)
    else:
        collision_rate, largest, distinct = 0.0, 0, 0
    vectors = np.asarray(embeddings, dtype=np.float64)
    squared_error = np.square(vectors - quantised.reconstruction).sum()
    total = np.square(vectors).sum()
    return SemanticIdStats(
        items=id_map.size,
        levels=id_map.levels,
        codebook_size=id_map.codebook_size,
        codebook_usage=tuple(usage),
        perplexity=tuple(perplexity),
        collision_rate=collision_rate,
        largest_collision_group=largest,
        distinct_ids=distinct,
        reconstruction_mse=float(squared_error / max(vectors.size, 1)),
        relative_reconstruction_error=float(squared_error / total) if total > 0 else 0.0,
        level_reconstruction_mse=tuple(float(error) for error in quantised.level_errors),
    )
