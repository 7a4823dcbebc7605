"""Configuration of a ranking model (the ``[model]`` table of a ranking TOML).

A model is a composition: a first stage (GSU) picked by :class:`SearchKind`, and a second stage
(ESU) whose parts are switched by the nested :class:`EsuConfig` (``esu_config.py``). MUSE, every
baseline and every ablation is one such composition; ``configs/ranking/*.toml`` names them.
Imports no torch.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from muse.ranking.models.esu_config import EsuConfig, LongTermAttentionKind


class SearchKind(enum.Enum):
    """The first stage: how the top-K long-term behaviours are chosen."""

    NONE = "none"  # DIN: no search, the ESU sees only the recent window
    MULTIMODAL_COSINE = "multimodal_cosine"  # MUSE: parameter-free cosine of MM embeddings
    SAME_CATEGORY = "same_category"  # SIM-hard: most recent behaviours of the target's category
    SOFT_INNER_PRODUCT = "soft_inner_product"  # SIM-soft: learned (W_b e_i)·(W_a e_a)
    SIMHASH = "simhash"  # ETA: Hamming distance of SimHash codes of MM embeddings
    SHARED_ATTENTION = "shared_attention"  # TWIN: the ESU's own attention logits over the history


@dataclass(frozen=True)
class SearchConfig:
    """First-stage settings; fields a kind does not use are ignored by it."""

    kind: SearchKind = SearchKind.MULTIMODAL_COSINE
    top_k: int = 50
    simhash_bits: int = 64  # ETA code length
    simhash_seed: int = 0  # ETA's fixed random projections
    soft_search_dim: int = 32  # SIM-soft projection width of W_a, W_b
    auxiliary_hidden: tuple[int, ...] = (200, 80)  # SIM-soft auxiliary CTR tower

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise ValueError(f"search.top_k must be ≥ 1, got {self.top_k}")
        if self.simhash_bits < 1 or self.soft_search_dim < 1:
            raise ValueError("search.simhash_bits and search.soft_search_dim must be ≥ 1")


@dataclass(frozen=True)
class RankingModelConfig:
    """A ranking model: GSU (``search``) + ESU (``esu``) + CTR tower.

    ``recent_length`` is N, the recent window for short-term attention, recent SimTier and the
    recent mean; 0 means the whole visible history (DIN over the full sequence).
    ``name`` is a label for reports only; nothing dispatches on it.
    """

    name: str = "muse"
    search: SearchConfig = field(default_factory=SearchConfig)
    esu: EsuConfig = field(default_factory=EsuConfig)
    id_embedding_dim: int = 16
    embedding_init_std: float = 0.05
    recent_length: int = 50
    tower_hidden: tuple[int, ...] = (256, 128, 64)

    def __post_init__(self) -> None:
        if self.id_embedding_dim < 1:
            raise ValueError(f"id_embedding_dim must be ≥ 1, got {self.id_embedding_dim}")
        if self.recent_length < 0:
            raise ValueError(
                f"recent_length must be ≥ 0 (0 = whole history), got {self.recent_length}"
            )
        if self.search.kind is SearchKind.NONE and self.esu.top_k_readers:
            raise ValueError(
                f"search.kind = 'none' selects no behaviours, but {list(self.esu.top_k_readers)} "
                "use them"
            )
        if (
            self.search.kind is SearchKind.SHARED_ATTENTION
            and self.esu.long_term.kind is LongTermAttentionKind.NONE
        ):
            raise ValueError(
                "search.kind = 'shared_attention' (TWIN) needs an esu.long_term attention to share"
            )

    @property
    def uses_multimodal(self) -> bool:
        """Whether any stage reads the item multimodal embedding table."""
        return (
            self.search.kind in (SearchKind.MULTIMODAL_COSINE, SearchKind.SIMHASH)
            or self.esu.reads_selected_cosines
            or self.esu.reads_recent_cosines
        )
