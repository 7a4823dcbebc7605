"""Configuration of the similar-items service (the ``[similar_items]`` table). Imports no torch."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class SimilarItemsConfig:
    """``bundle_root`` holds one directory per index bundle (``muse i2i index --out``). With an
    ``experiments`` config (the ranking's format, its bundles naming index bundles), every index
    it names is loaded and each user is routed to their variant; without one, everyone gets
    ``default_bundle``. ``max_k`` bounds a request's k; ``search_threads`` run the searches.

    New items (a request carrying an item's content instead of its id) are embedded by the
    encoder bundle (``muse i2i export --out``, a directory under ``bundle_root``) that an index
    bundle's manifest names, or that ``encoders`` maps the index bundle's name to (which wins);
    an index with neither answers only catalogue items. ``encoder_threads`` encode side by side,
    each with ``encoder_onnx_threads`` onnxruntime threads, on ``encoder_providers`` (empty:
    CUDAExecutionProvider first when onnxruntime has it, then CPUExecutionProvider).
    """

    bundle_root: Path
    default_bundle: str = "similar_items"
    experiments: Path | None = None
    max_k: int = 1000
    search_threads: int = 2
    # faiss's own OpenMP threads per search; 1 leaves parallelism to concurrent requests.
    faiss_threads: int = 1
    encoders: dict[str, str] = field(default_factory=dict)
    encoder_threads: int = 1
    encoder_onnx_threads: int = 1
    encoder_providers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in (
            "max_k",
            "search_threads",
            "faiss_threads",
            "encoder_threads",
            "encoder_onnx_threads",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"similar_items.{name} must be ≥ 1, got {getattr(self, name)}")
