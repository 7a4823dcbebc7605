"""The RQ-VAE: shapes and gradients of one pass, training, and the dead-code guard against collapse."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from muse.conversational.semantic_ids.rq_vae import ResidualQuantisedAutoencoder
from muse.conversational.semantic_ids.semantic_id_config import (
    QuantiserKind,
    RqVaeConfig,
    SemanticIdConfig,
)
from muse.conversational.semantic_ids.semantic_ids import build_semantic_ids

SMALL_VAE = RqVaeConfig(latent_width=8, hidden_widths=(32,), epochs=20, batch_size=64)


def _clustered(count: int = 300, dim: int = 16, seed: int = 0) -> np.ndarray:
    """A few tight clusters: the codes the encoder's drift leaves behind go unused (collapse)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(8, dim))
    return (centres[rng.integers(0, 8, count)] + 0.2 * rng.normal(size=(count, dim))).astype(
        np.float32
    )


def _config(vae: RqVaeConfig) -> SemanticIdConfig:
    return SemanticIdConfig(
        kind=QuantiserKind.RQ_VAE, codebook_size=16, kmeans_iterations=10, rq_vae=vae
    )


def test_a_forward_pass_has_the_documented_shapes_and_passes_gradients_straight_through() -> None:
    torch.manual_seed(0)
    model = ResidualQuantisedAutoencoder(16, SMALL_VAE, levels=3, codebook_size=16)
    embeddings = torch.from_numpy(_clustered(count=64))
    with torch.no_grad():
        model.initialise_codebooks(model.encode(embeddings), iterations=5, seed=0)
    output = model(embeddings)
    assert output.reconstruction.shape == (64, 16) and output.codes.shape == (64, 3)
    assert output.quantised.shape == output.latent.shape == (64, 8)
    assert output.residuals.shape == (64, 3, 8)
    assert output.commitment_loss.shape == output.codebook_loss.shape == ()
    assert int(output.codes.min()) >= 0 and int(output.codes.max()) < 16
    # The quantised latent is the sum of the chosen codewords.
    chosen = sum(model.codebooks[level][output.codes[:, level]] for level in range(3))
    torch.testing.assert_close(output.quantised, chosen)
    output.reconstruction.square().sum().backward()
    first_layer = model.encoder[0].weight.grad
    assert first_layer is not None and float(first_layer.abs().sum()) > 0  # through the codes


def test_training_lowers_the_reconstruction_error_and_keeps_codes_in_use() -> None:
    vectors = _clustered()
    _, barely = build_semantic_ids(
        np.arange(300), vectors, _config(dataclasses.replace(SMALL_VAE, epochs=1))
    )
    _, trained = build_semantic_ids(np.arange(300), vectors, _config(SMALL_VAE))
    assert trained.reconstruction_mse < 0.7 * barely.reconstruction_mse
    assert (np.diff(trained.level_reconstruction_mse) < 0).all()  # each level adds detail
    assert float(np.mean(trained.codebook_usage)) >= 0.85


def test_without_the_dead_code_guard_the_codebooks_collapse() -> None:
    vectors = _clustered()
    fast = dataclasses.replace(SMALL_VAE, learning_rate=1e-2)
    _, guarded = build_semantic_ids(np.arange(300), vectors, _config(fast))
    unguarded_config = _config(dataclasses.replace(fast, dead_code_steps=0))
    _, unguarded = build_semantic_ids(np.arange(300), vectors, unguarded_config)
    assert float(np.mean(guarded.codebook_usage)) >= 0.85
    assert float(np.mean(unguarded.codebook_usage)) < float(np.mean(guarded.codebook_usage)) - 0.3
    assert unguarded.collision_rate > guarded.collision_rate


def test_fitting_leaves_the_global_torch_rng_alone() -> None:
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    build_semantic_ids(
        np.arange(300), _clustered(), _config(dataclasses.replace(SMALL_VAE, epochs=1))
    )
    torch.testing.assert_close(torch.rand(3), expected)
