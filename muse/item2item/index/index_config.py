"""How the similar-item index is built and searched (the ``[index]`` table). Imports no torch."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class IndexKind(enum.Enum):
    """The faiss structure behind SimilarItems; all rank by inner product of unit vectors."""

    EXACT = "exact"  # brute force: recall 1, for catalogues small enough to scan per request
    HNSW = "hnsw"  # graph search over the full vectors
    IVF_PQ = "ivf_pq"  # inverted lists of product-quantised codes, re-ranked exactly


@dataclass(frozen=True)
class IndexConfig:
    """Build and search settings; fields a kind does not use are ignored by it.

    hnsw_*: graph degree M, build beam efConstruction, search beam efSearch. ivf_lists: number of
    inverted lists (0 = about 4·√N); pq_subquantizers must divide the embedding width; ivf_probe:
    lists visited per query; refine_factor: IVF-PQ candidates re-ranked exactly per result.
    filter_exact_limit: a category with at most this many items is searched exactly (a scan of
    its rows costs less than a graph or list walk that mostly meets other categories' items).
    recall_queries / recall_k: the sample of catalogue items whose top-k the build compares with
    exact search (recorded in the bundle manifest).
    """

    kind: IndexKind = IndexKind.HNSW
    hnsw_neighbours: int = 32
    hnsw_build_beam: int = 200
    hnsw_search_beam: int = 128
    ivf_lists: int = 0
    pq_subquantizers: int = 16
    pq_bits: int = 8
    ivf_probe: int = 16
    refine_factor: float = 4.0
    filter_exact_limit: int = 50_000
    recall_queries: int = 1000
    recall_k: int = 100
    seed: int = 0

    def __post_init__(self) -> None:
        positive = (
            "hnsw_neighbours",
            "hnsw_build_beam",
            "hnsw_search_beam",
            "pq_subquantizers",
            "ivf_probe",
            "recall_k",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"index.{name} must be ≥ 1, got {getattr(self, name)}")
        for name in ("ivf_lists", "recall_queries", "filter_exact_limit"):
            if getattr(self, name) < 0:
                raise ValueError(f"index.{name} must be ≥ 0, got {getattr(self, name)}")
        if not 1 <= self.pq_bits <= 16:
            raise ValueError(f"index.pq_bits must be in 1..16, got {self.pq_bits}")
        if self.refine_factor < 1:
            raise ValueError(f"index.refine_factor must be ≥ 1, got {self.refine_factor}")
