"""Cosines of given rows to one query per sample, computed by the GSU's exact fused kernel.

The ranking model needs the MM cosine of each recent behaviour (and of behaviours a non-MM search
kept) to its target. Gathering those rows as float32 and normalising them costs more than the
search over the whole history; asking the exact top-K for all n rows of a (B, n) window returns
every searchable row's cosine without materialising any float rows. The plain reference is
``EmbeddingTable.cosines`` (a test compares them). ``window_cosines`` is the form for one window
shared by many queries (a served request's recent window against its C candidates).
"""

from __future__ import annotations

import numpy as np
import torch

from muse.core.ids import FIRST_ID_INDEX
from muse.search.cosine_top_k import top_k
from muse.search.embedding_table import NORM_EPS, EmbeddingTable


@torch.no_grad()
def row_cosines(table: EmbeddingTable, items: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
    """Cosine of each row at ``items`` (B, n) to its sample's query (B, D) → (B, n) float32.

    Padding (0) and OOV (1) positions, and rows without an embedding, give 0. No gradient flows
    (the MM table and the targets' MM embeddings are frozen).
    """
    batch, width = items.shape
    if width == 0:
        return torch.zeros((batch, 0), dtype=torch.float32, device=queries.device)
    found = top_k(table, items, queries.unsqueeze(1), width)  # every searchable row, best first
    # Unused slots write to a spare column that is dropped.
    slots = found.positions[:, 0].masked_fill(~found.mask[:, 0], width)
    cosines = torch.zeros((batch, width + 1), dtype=torch.float32, device=queries.device)
    return cosines.scatter_(1, slots, found.cosines[:, 0])[:, :width]


@torch.no_grad()
def window_cosines(
    table: EmbeddingTable, items: torch.Tensor, queries: torch.Tensor
) -> torch.Tensor:
    """Cosine of each row at ``items`` (B, n) to each of its history's C queries (B, C, D) →
    (B, C, n) float32: ``row_cosines`` on the window repeated C times (a test compares).

    A served request asks the same recent window for all C candidates: its n rows are gathered
    and normalised once and one matmul scores them all, instead of C separate small searches.
    Padding (0) and OOV (1) positions give 0.
    """
    batch, width = items.shape
    if width == 0:
        return torch.zeros((batch, queries.shape[1], 0), dtype=torch.float32)
    # The small per-row steps in numpy (a third of torch's dispatch cost); the matmul in torch,
    # on its intra-op threads (numpy's BLAS would start its own, spinning ones). The table's
    # scale cancels in a cosine, so raw rows serve.
    indices = items.detach().cpu().numpy()
    rows = np.take(np.asarray(table.array), indices, axis=0).astype(np.float32)  # (B, n, D)
    norms = np.sqrt(np.einsum("bnd,bnd->bn", rows, rows))
    scale = np.where(indices >= FIRST_ID_INDEX, 1.0 / np.maximum(norms, NORM_EPS), 0.0)
    rows *= scale.astype(np.float32)[..., None]
    dots = torch.bmm(queries.detach().cpu().float(), torch.from_numpy(rows).transpose(1, 2))
    return dots.to(queries.device)
