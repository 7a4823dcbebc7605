"""Shared checks for GSU search results: equality with the reference up to tie order."""

from __future__ import annotations

import torch

from muse.search import SearchResult
from muse.search.embedding_table import normalize_rows


def exact_cosines(history: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """(B, C, L) fp64 cosines of raw (B, L, D) history and (B, C, D) candidates."""
    rows = normalize_rows(history.double())
    queries = normalize_rows(candidates.double())
    return torch.einsum("bcd,bld->bcl", queries, rows)


def assert_same_top_k(
    fast: SearchResult,
    reference: SearchResult,
    history: torch.Tensor,
    searchable: torch.Tensor,
    candidates: torch.Tensor,
    tolerance: float = 2e-5,
) -> None:
    """The fast result is an exact top-K: same mask, same sorted cosines, true cosines at valid positions.

    history: (B, L, D) raw rows; searchable: (B, L) bool; candidates: (B, C, D) raw.
    Positions may differ from the reference only between (near-)tied rows.
    """
    assert fast.positions.shape == reference.positions.shape
    assert fast.positions.dtype == torch.int64 and fast.mask.dtype == torch.bool
    assert torch.equal(fast.mask, reference.mask)
    assert torch.all(fast.positions[~fast.mask] == -1)
    assert torch.all(fast.cosines[~fast.mask] == 0)
    torch.testing.assert_close(fast.cosines, reference.cosines, atol=tolerance, rtol=0)
    # Highest first (kept slots come first, so compare neighbours that are both kept).
    both_kept = fast.mask[..., :-1] & fast.mask[..., 1:]
    assert torch.all((fast.cosines[..., :-1] + 1e-6 >= fast.cosines[..., 1:]) | ~both_kept)
    assert torch.all(fast.mask[..., :-1] | ~fast.mask[..., 1:])
    truth = exact_cosines(history, candidates)
    batch, num_candidates, _ = fast.positions.shape
    for b in range(batch):
        for c in range(num_candidates):
            kept = fast.positions[b, c][fast.mask[b, c]]
            assert kept.unique().numel() == kept.numel(), "a position was returned twice"
            if kept.numel():
                assert bool(searchable[b, kept].all()), "padding/OOV returned"
                true_values = truth[b, c, kept].float()
                torch.testing.assert_close(
                    fast.cosines[b, c][fast.mask[b, c]], true_values, atol=tolerance, rtol=0
                )


def recall_at_k(fast: SearchResult, reference: SearchResult) -> float:
    """Share of the reference's kept positions that the fast result also returned."""
    hits = 0
    total = 0
    for fast_row, fast_mask, ref_row, ref_mask in zip(
        fast.positions.reshape(-1, fast.positions.shape[-1]),
        fast.mask.reshape(-1, fast.mask.shape[-1]),
        reference.positions.reshape(-1, reference.positions.shape[-1]),
        reference.mask.reshape(-1, reference.mask.shape[-1]),
        strict=True,
    ):
        expected = set(ref_row[ref_mask].tolist())
        hits += len(expected & set(fast_row[fast_mask].tolist()))
        total += len(expected)
    return hits / total if total else 1.0
