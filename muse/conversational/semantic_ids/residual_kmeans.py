"""RQ-KMeans: k-means (faiss) on each level's residuals, with a guard that leaves no code unused.

Level 1 clusters the embeddings, level 2 what level 1's centroids leave over, and so on; an
item's codes are its nearest centroid at each level, and the sum of those centroids rebuilds it.
faiss re-splits clusters that empty during training, but the final assignment can still leave a
code with no item (duplicate points, centroids that coincide); :func:`fill_unused_codes` re-seeds
every such code on a distinct poorly fitted point, so each code is used whenever the level has at
least as many distinct residuals as codes. Imports no torch.
"""

from __future__ import annotations

import faiss
import numpy as np
from tqdm import tqdm

from muse.conversational.semantic_ids.quantised_items import QuantisedItems
from muse.core.errors import ConfigError

# Rounds of re-seeding: a round can empty a code whose items all moved to a re-seeded one.
FILL_ROUNDS = 20
# A point this close (squared) to its centroid is on it up to float noise (inputs are unit rows):
# re-seeding there adds nothing.
ON_CENTROID = 1e-10
# Candidates examined per unused code when picking distinct points to re-seed on.
CANDIDATES_PER_CODE = 8


def fit_residual_kmeans(
    vectors: np.ndarray,
    levels: int,
    codebook_size: int,
    iterations: int,
    seed: int,
    progress: bool = False,
) -> QuantisedItems:
    """Quantise ``vectors`` (N, D) with ``levels`` k-means codebooks of ``codebook_size`` codes.

    Raises ConfigError (naming codebook_size) when there are fewer distinct vectors than codes.
    """
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    require_distinct_rows(vectors, codebook_size)
    count, dim = vectors.shape
    residual = vectors.copy()
    codes = np.empty((count, levels), dtype=np.int32)
    codebooks = np.empty((levels, codebook_size, dim), dtype=np.float32)
    level_errors = np.empty(levels, dtype=np.float64)
    for level in tqdm(range(levels), desc="rq-kmeans", unit="level", disable=not progress):
        centroids = kmeans_centroids(residual, codebook_size, iterations, seed + level)
        centroids, assigned = fill_unused_codes(
            residual, centroids, nearest_codes(residual, centroids)
        )
        codebooks[level] = centroids
        codes[:, level] = assigned
        residual -= centroids[assigned]
        level_errors[level] = float(np.mean(np.square(residual, dtype=np.float64)))
    return QuantisedItems(codes, codebooks, vectors - residual, level_errors)


def require_distinct_rows(vectors: np.ndarray, codebook_size: int) -> None:
    """Raise ConfigError unless ``vectors`` (N, D) holds at least ``codebook_size`` distinct rows."""
    distinct = distinct_row_count(vectors)
    if distinct < codebook_size:
        raise ConfigError(
            f"codebook_size = {codebook_size} needs at least that many distinct item embeddings, "
            f"got {distinct} (of {vectors.shape[0]} items): lower codebook_size"
        )


def distinct_row_count(vectors: np.ndarray) -> int:
    """How many different rows ``vectors`` (N, D) holds."""
    rows = np.ascontiguousarray(vectors)
    if rows.shape[0] == 0:
        return 0
    # One opaque value per row: np.unique on them compares whole rows at once.
    return int(np.unique(rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1])))).size)


def kmeans_centroids(points: np.ndarray, count: int, iterations: int, seed: int) -> np.ndarray:
    """(count, D) float32 k-means centroids of ``points`` (N, D) (faiss, seeded, N ≥ count)."""
    points = np.ascontiguousarray(points, dtype=np.float32)
    # min_points_per_centroid = 1: small catalogues are fine, so no "too few points" warning.
    kmeans = faiss.Kmeans(
        points.shape[1],
        count,
        niter=iterations,
        seed=seed,
        verbose=False,
        min_points_per_centroid=1,
    )
    kmeans.train(points)
    return np.array(kmeans.centroids, dtype=np.float32)


def nearest_codes(points: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """(N,) int64 index of the nearest of ``centroids`` (K, D) to each of ``points`` (N, D)."""
    index = faiss.IndexFlatL2(centroids.shape[1])
    index.add(np.ascontiguousarray(centroids, dtype=np.float32))
    _, nearest = index.search(np.ascontiguousarray(points, dtype=np.float32), 1)
    return nearest[:, 0].astype(np.int64)


def fill_unused_codes(
    points: np.ndarray, centroids: np.ndarray, codes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Re-seed every code no point uses on a distinct point far from its centroid, reassigning
    until each code is used or no point is left off its centroid.

    points (N, D), centroids (K, D), codes (N,) → (centroids (K, D), codes (N,)) updated.
    """
    centroids = np.array(centroids, dtype=np.float32)
    codes = np.asarray(codes, dtype=np.int64)
    for _ in range(FILL_ROUNDS):
        unused = np.flatnonzero(np.bincount(codes, minlength=centroids.shape[0]) == 0)
        if unused.size == 0:
            break
        errors = np.square(points - centroids[codes]).sum(axis=1)
        seeds = _distinct_worst_points(points, errors, unused.size)
        if seeds.size == 0:
            break  # every point sits on a centroid: too few distinct points for every code
        centroids[unused[: seeds.size]] = points[seeds]
        codes = nearest_codes(points, centroids)
        # One Lloyd step: the clusters that lost points to the re-seeded codes re-centre.
        centroids = member_means(points, codes, centroids)
        codes = nearest_codes(points, centroids)
    return centroids, codes


def member_means(points: np.ndarray, codes: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """(K, D) centroids moved to the mean of their points (points (N, D), codes (N,)); a code
    without points keeps its centroid."""
    order = np.argsort(codes, kind="stable")
    used, starts, counts = np.unique(codes[order], return_index=True, return_counts=True)
    means = np.array(centroids, dtype=np.float32)
    sums = np.add.reduceat(points[order].astype(np.float64), starts, axis=0)
    means[used] = (sums / counts[:, None]).astype(np.float32)
    return means


def _distinct_worst_points(points: np.ndarray, errors: np.ndarray, wanted: int) -> np.ndarray:
    """Rows of up to ``wanted`` pairwise different points, largest ``errors`` first, each off its
    centroid."""
    off_centroid = np.flatnonzero(errors > ON_CENTROID)
    examined = min(off_centroid.size, wanted * CANDIDATES_PER_CODE + 64)
    while True:
        top = off_centroid[np.argsort(-errors[off_centroid], kind="stable")[:examined]]
        rows = np.ascontiguousarray(points[top])
        keys = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1])))[:, 0]
        _, first = np.unique(keys, return_index=True)
        distinct = top[np.sort(first)]
        if distinct.size >= wanted or examined == off_centroid.size:
            return distinct[:wanted]
        examined = min(off_centroid.size, examined * 4)  # duplicates crowd the top: look further
