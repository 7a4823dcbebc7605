"""What every item encoder returns (NoteLLM-2, its ablations and the baselines)."""

from __future__ import annotations

from typing import NamedTuple

import torch


class ItemEmbeddings(NamedTuple):
    """multimodal: (B, D_out) unit-norm; visual: (B, D_out) unit-norm, None without mICL."""

    multimodal: torch.Tensor
    visual: torch.Tensor | None
