"""What a residual quantiser gives back for a set of item embeddings. Imports no torch."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class QuantisedItems(NamedTuple):
    """N items of width D quantised with L levels of K codes.

    codes: (N, L) int32, level ℓ's code of each item. codebooks: (L, K, W) float32 codewords (W = D
    for RQ-KMeans, the latent width for the RQ-VAE). reconstruction: (N, D) float32, each item
    rebuilt from its codewords (their sum; for the RQ-VAE, the decoded sum). level_errors: (L,)
    mean squared error per element of the reconstruction from the first ℓ + 1 levels only.
    """

    codes: np.ndarray
    codebooks: np.ndarray
    reconstruction: np.ndarray
    level_errors: np.ndarray
