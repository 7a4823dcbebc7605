"""How item embeddings become semantic IDs (``muse conv ids``'s TOML). Imports no torch."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

# Codes are stored int32 and each level's codes are tokens of the decoder's vocabulary.
MAX_CODEBOOK_SIZE = 65_536
MAX_LEVELS = 16


class QuantiserKind(enum.Enum):
    """How the residual codebooks are learnt."""

    RQ_KMEANS = "rq_kmeans"  # k-means on each level's residuals (faiss): no training, no collapse
    RQ_VAE = "rq_vae"  # an autoencoder whose latent is residually quantised (torch)


@dataclass(frozen=True)
class RqVaeConfig:
    """``[rq_vae]``: the RQ-VAE's network and its fitting loop.

    The encoder is an MLP through ``hidden_widths`` to ``latent_width``; the decoder mirrors it.
    Loss = reconstruction MSE + codebook term + ``commitment_weight`` · commitment term.
    ``dead_code_steps``: a code no batch has used for this many steps is re-seeded from a random
    residual of the current batch (0 turns the collapse guard off). ``seed`` seeds the network's
    weights, the batch order and the restarts (the k-means initialisation uses the top-level seed).
    """

    latent_width: int = 32
    hidden_widths: tuple[int, ...] = (128,)
    epochs: int = 60
    batch_size: int = 256
    learning_rate: float = 1e-3
    commitment_weight: float = 0.25
    dead_code_steps: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("latent_width", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"rq_vae.{name} must be ≥ 1, got {getattr(self, name)}")
        if any(width < 1 for width in self.hidden_widths):
            raise ValueError(
                f"rq_vae.hidden_widths must all be ≥ 1, got {list(self.hidden_widths)}"
            )
        if not self.learning_rate > 0:
            raise ValueError(f"rq_vae.learning_rate must be > 0, got {self.learning_rate}")
        if self.commitment_weight < 0:
            raise ValueError(f"rq_vae.commitment_weight must be ≥ 0, got {self.commitment_weight}")
        if self.dead_code_steps < 0:
            raise ValueError(f"rq_vae.dead_code_steps must be ≥ 0, got {self.dead_code_steps}")


@dataclass(frozen=True)
class SemanticIdConfig:
    """The residual quantiser: ``levels`` codebooks of ``codebook_size`` codes each (TIGER's
    3 × 256), then one collision token that tells apart items whose codes coincide.

    ``kmeans_iterations``: Lloyd iterations of every k-means (RQ-KMeans' levels and the RQ-VAE's
    codebook initialisation); ``seed`` seeds those k-means.
    """

    kind: QuantiserKind = QuantiserKind.RQ_KMEANS
    levels: int = 3
    codebook_size: int = 256
    kmeans_iterations: int = 25
    seed: int = 0
    rq_vae: RqVaeConfig = field(default_factory=RqVaeConfig)

    def __post_init__(self) -> None:
        if not 1 <= self.levels <= MAX_LEVELS:
            raise ValueError(f"levels must be in 1..{MAX_LEVELS}, got {self.levels}")
        if not 2 <= self.codebook_size <= MAX_CODEBOOK_SIZE:
            raise ValueError(
                f"codebook_size must be in 2..{MAX_CODEBOOK_SIZE}, got {self.codebook_size}"
            )
        if self.kmeans_iterations < 1:
            raise ValueError(f"kmeans_iterations must be ≥ 1, got {self.kmeans_iterations}")
