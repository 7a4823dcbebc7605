"""Configuration of the similar-items service (the ``[similar_items]`` table). Imports no torch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SimilarItemsConfig:
    """``bundle_root`` holds one directory per index bundle (``muse i2i index --out``). With an
    ``experiments`` config (the ranking's format, its bundles naming index bundles), every index
    it names is loaded and each user is routed to their variant; without one, everyone gets
    ``default_bundle``. ``max_k`` bounds a request's k; ``search_threads`` run the searches."""

    bundle_root: Path
    default_bundle: str = "similar_items"
    experiments: Path | None = None
    max_k: int = 1000
    search_threads: int = 2
    # faiss's own OpenMP threads per search; 1 leaves parallelism to concurrent requests.
    faiss_threads: int = 1

    def __post_init__(self) -> None:
        for name in ("max_k", "search_threads", "faiss_threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"similar_items.{name} must be ≥ 1, got {getattr(self, name)}")
