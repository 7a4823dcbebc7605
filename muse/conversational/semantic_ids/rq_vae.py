"""RQ-VAE (TIGER): an MLP autoencoder whose latent is quantised by L residual codebooks.

The encoder maps an embedding to a latent; level ℓ picks the codeword nearest to what levels
0 … ℓ − 1 left over; the decoder rebuilds the embedding from the sum of the codewords, passed
through with a straight-through estimator so the encoder still gets gradients. The codebooks
start as residual k-means of the first latents (:meth:`initialise_codebooks`). The loss and the
optimiser live in ``muse.conversational.training.rq_vae_fitting``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from muse.conversational.semantic_ids.residual_kmeans import fit_residual_kmeans
from muse.conversational.semantic_ids.semantic_id_config import RqVaeConfig


class RqVaeOutput(NamedTuple):
    """One forward pass over N embeddings of width D, latent width W, L levels.

    reconstruction: (N, D) the decoded quantised latent. codes: (N, L) int64, each level's code.
    quantised: (N, W) the sum of the codewords, straight-through (its gradient reaches the latent).
    latent: (N, W) the encoder's output. residuals: (N, L, W) what enters each level (detached).
    commitment_loss: () Σ_ℓ mean ‖r_ℓ − sg(e_ℓ)‖² per element, pulling the encoder to its codes.
    codebook_loss: () Σ_ℓ mean ‖sg(r_ℓ) − e_ℓ‖² per element, pulling the codewords to the data.
    """

    reconstruction: torch.Tensor
    codes: torch.Tensor
    quantised: torch.Tensor
    latent: torch.Tensor
    residuals: torch.Tensor
    commitment_loss: torch.Tensor
    codebook_loss: torch.Tensor


class ResidualQuantisedAutoencoder(nn.Module):
    """Embeddings (N, D) → L codes each, and back; ``codebooks`` is an (L, K, W) parameter."""

    def __init__(
        self, input_width: int, config: RqVaeConfig, levels: int, codebook_size: int
    ) -> None:
        super().__init__()
        self.config = config
        widths = [input_width, *config.hidden_widths, config.latent_width]
        self.encoder = _mlp(widths)
        self.decoder = _mlp(widths[::-1])
        self.codebooks = nn.Parameter(torch.zeros(levels, codebook_size, config.latent_width))

    @property
    def levels(self) -> int:
        return int(self.codebooks.shape[0])

    @property
    def codebook_size(self) -> int:
        return int(self.codebooks.shape[1])

    def encode(self, embeddings: torch.Tensor) -> torch.Tensor:
        """embeddings (N, D) → latent (N, W)."""
        latent: torch.Tensor = self.encoder(embeddings)
        return latent

    def decode(self, quantised: torch.Tensor) -> torch.Tensor:
        """quantised latent (N, W) → reconstruction (N, D)."""
        reconstruction: torch.Tensor = self.decoder(quantised)
        return reconstruction

    def quantise(self, latent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """latent (N, W) → codes (N, L) int64, codewords (N, L, W), residuals (N, L, W) detached.

        Each level's residual subtracts the earlier codewords detached: the codewords learn from
        the codebook term only, the encoder from the commitment term and the reconstruction.
        """
        residual = latent
        codes, codewords, residuals = [], [], []
        for level in range(self.levels):
            codebook = self.codebooks[level]  # (K, W)
            distances = torch.cdist(residual.detach(), codebook.detach())  # (N, K)
            code = distances.argmin(dim=1)
            codeword = codebook[code]  # (N, W)
            codes.append(code)
            codewords.append(codeword)
            residuals.append(residual)
            residual = residual - codeword.detach()
        return (
            torch.stack(codes, dim=1),
            torch.stack(codewords, dim=1),
            torch.stack(residuals, dim=1),
        )

    def forward(self, embeddings: torch.Tensor) -> RqVaeOutput:
        """embeddings (N, D) → :class:`RqVaeOutput` (shapes there)."""
        latent = self.encode(embeddings)
        codes, codewords, residuals = self.quantise(latent)
        per_level_commitment = (residuals - codewords.detach()).square().mean(dim=(0, 2))  # (L,)
        per_level_codebook = (residuals.detach() - codewords).square().mean(dim=(0, 2))  # (L,)
        summed = codewords.sum(dim=1)  # (N, W)
        quantised = latent + (summed - latent).detach()  # straight-through estimator
        return RqVaeOutput(
            reconstruction=self.decode(quantised),
            codes=codes,
            quantised=quantised,
            latent=latent,
            residuals=residuals.detach(),
            commitment_loss=per_level_commitment.sum(),
            codebook_loss=per_level_codebook.sum(),
        )

    @torch.no_grad()
    def initialise_codebooks(self, latents: torch.Tensor, iterations: int, seed: int) -> None:
        """Set the codebooks to residual k-means (level by level) of ``latents`` (N, W), N ≥ K."""
        points = latents.detach().to("cpu", torch.float32).numpy()
        fitted = fit_residual_kmeans(points, self.levels, self.codebook_size, iterations, seed)
        self.codebooks.copy_(torch.from_numpy(np.asarray(fitted.codebooks)))

    @torch.no_grad()
    def restart_codes(self, level: int, codes: torch.Tensor, residuals: torch.Tensor) -> None:
        """Re-seed codewords ``codes`` (C,) of ``level`` on ``residuals`` (C, W) (unused codes)."""
        self.codebooks[level, codes] = residuals.to(self.codebooks.dtype)


def _mlp(widths: list[int]) -> nn.Sequential:
    """Linear layers through ``widths`` with a ReLU between each two (none after the last)."""
    layers: list[nn.Module] = []
    for index, (inner, outer) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        layers.append(nn.Linear(inner, outer))
        if index < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)
