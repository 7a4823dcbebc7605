"""Fit an RQ-VAE to item embeddings: Adam on reconstruction + codebook + β · commitment, with
dead-code restarts against codebook collapse, then the codes of every item.

A code no batch has chosen for ``dead_code_steps`` steps is re-seeded on a random residual of the
current batch at its level, where data actually is; without this, codes the encoder's drift left
behind stay unused and items crowd onto the rest (colliding IDs a retriever cannot tell apart).
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from muse.conversational.semantic_ids.quantised_items import QuantisedItems
from muse.conversational.semantic_ids.rq_vae import ResidualQuantisedAutoencoder
from muse.conversational.semantic_ids.semantic_id_config import RqVaeConfig

# The codebooks start from k-means of the first batch, widened to this many points per code:
# k-means on about one point per code would just copy the points.
INITIALISATION_POINTS_PER_CODE = 16
# Items encoded per forward pass when assigning the final codes.
ASSIGN_CHUNK_ROWS = 8192


def fit_rq_vae(
    vectors: np.ndarray,
    levels: int,
    codebook_size: int,
    config: RqVaeConfig,
    kmeans_iterations: int,
    kmeans_seed: int,
    progress: bool = False,
) -> QuantisedItems:
    """Train an RQ-VAE on ``vectors`` (N, D) and quantise every row with it (CPU, seeded).

    ``kmeans_iterations`` / ``kmeans_seed`` drive the codebooks' k-means initialisation.
    """
    data = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
    count = data.shape[0]
    # A private RNG state: fitting is reproducible and leaves the caller's torch RNG untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        generator = torch.Generator().manual_seed(config.seed)
        model = ResidualQuantisedAutoencoder(data.shape[1], config, levels, codebook_size)
        order = torch.randperm(count, generator=generator)
        widened = max(config.batch_size, INITIALISATION_POINTS_PER_CODE * codebook_size)
        first = order[: min(count, widened)]
        with torch.no_grad():
            model.initialise_codebooks(model.encode(data[first]), kmeans_iterations, kmeans_seed)
        _train(model, data, config, generator, progress)
        return _quantise_all(model, data)


def _train(
    model: ResidualQuantisedAutoencoder,
    data: torch.Tensor,
    config: RqVaeConfig,
    generator: torch.Generator,
    progress: bool,
) -> None:
    optimiser = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    steps_unused = torch.zeros(model.levels, model.codebook_size, dtype=torch.long)
    model.train()
    bar = tqdm(range(config.epochs), desc="rq-vae", unit="epoch", disable=not progress)
    for _ in bar:
        total, batches = 0.0, 0
        for rows in torch.randperm(data.shape[0], generator=generator).split(config.batch_size):
            batch = data[rows]
            output = model(batch)
            loss = (
                torch.nn.functional.mse_loss(output.reconstruction, batch)
                + output.codebook_loss
                + config.commitment_weight * output.commitment_loss
            )
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total, batches = total + float(loss.detach()), batches + 1
            if config.dead_code_steps:
                _restart_dead_codes(
                    model, output.codes, output.residuals, steps_unused, config, generator
                )
        bar.set_postfix(loss=f"{total / max(batches, 1):.4f}")


def _restart_dead_codes(
    model: ResidualQuantisedAutoencoder,
    codes: torch.Tensor,
    residuals: torch.Tensor,
    steps_unused: torch.Tensor,
    config: RqVaeConfig,
    generator: torch.Generator,
) -> None:
    """Count the steps each code went unchosen (codes (B, L), residuals (B, L, W)); re-seed the
    codes unchosen for ``dead_code_steps`` on random batch residuals of their level."""
    used = torch.zeros_like(steps_unused, dtype=torch.bool)
    used.scatter_(1, codes.T, True)
    steps_unused.add_(1).masked_fill_(used, 0)
    for level in range(model.levels):
        dead = torch.nonzero(steps_unused[level] >= config.dead_code_steps).flatten()
        if dead.numel() == 0:
            continue
        rows = torch.randint(residuals.shape[0], (dead.numel(),), generator=generator)
        model.restart_codes(level, dead, residuals[rows, level])
        steps_unused[level, dead] = 0


@torch.no_grad()
def _quantise_all(model: ResidualQuantisedAutoencoder, data: torch.Tensor) -> QuantisedItems:
    """Every row's codes, its reconstruction and the per-level reconstruction error."""
    model.eval()
    codes, reconstructions = [], []
    squared_errors = torch.zeros(model.levels, dtype=torch.float64)
    for batch in data.split(ASSIGN_CHUNK_ROWS):
        chunk_codes, codewords, _ = model.quantise(model.encode(batch))
        partial = codewords.cumsum(dim=1)  # (B, L, W): the latent rebuilt from levels 0 … ℓ
        for level in range(model.levels):
            rebuilt = model.decode(partial[:, level])
            squared_errors[level] += (rebuilt - batch).double().square().sum()
        codes.append(chunk_codes.to(torch.int32))
        reconstructions.append(rebuilt)
    elements = max(data.numel(), 1)
    return QuantisedItems(
        codes=torch.cat(codes).numpy(),
        codebooks=model.codebooks.detach().numpy().copy(),
        reconstruction=torch.cat(reconstructions).numpy(),
        level_errors=(squared_errors / elements).numpy(),
    )
