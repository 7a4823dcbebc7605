"""Exact log p(ID | query) by teacher forcing: the reference the beam search is checked against,
and the retriever's score of any candidate ID (what TTR weighs with α).

One encoder pass per query batch, then decoder passes over (query, candidate) pairs in chunks.
The score is the same quantity GeneratedIds.log_probs holds: the sum over the L + 2 tokens (the
ID's L + 1, then EOS) of the model's log-softmax over the whole ID vocabulary.
"""

from __future__ import annotations

import torch

from muse.conversational.models.generative_retriever import (
    EncodedQueries,
    GenerativeRetriever,
    QueryBatch,
)
from muse.conversational.models.prefix_trie import EOS_TOKEN

PAIRS_PER_PASS = 4096  # (query, candidate) pairs per decoder pass: bounds the (P, L + 2, V) logits


@torch.no_grad()
def id_sequence_scores(
    model: GenerativeRetriever,
    queries: QueryBatch,
    candidates: torch.Tensor,
    pairs_per_pass: int = PAIRS_PER_PASS,
) -> torch.Tensor:
    """queries (B queries), candidates (B, K, L + 1) int64 ID tokens → (B, K) float32
    log p(ID | query) of each query's K candidates. Call in eval mode."""
    if model.training:
        raise RuntimeError("id_sequence_scores needs the retriever in eval mode (dropout is on)")
    if candidates.dim() != 3 or candidates.shape[0] != queries.text_tokens.shape[0]:
        raise ValueError(f"candidates must be (B, K, L + 1), got {tuple(candidates.shape)}")
    batch, count, length = candidates.shape
    encoded = model.encode(queries)
    device = encoded.hidden.device
    candidates = candidates.to(device=device, dtype=torch.int64)
    eos = torch.full((batch, count, 1), EOS_TOKEN, dtype=torch.int64, device=device)
    labels = torch.cat([candidates, eos], dim=2)  # (B, K, L + 2)
    per_pass = max(1, pairs_per_pass // batch)
    scores = []
    for start in range(0, count, per_pass):
        chunk = labels[:, start : start + per_pass]  # (B, C, L + 2)
        width = chunk.shape[1]
        repeated = EncodedQueries(
            hidden=encoded.hidden.repeat_interleave(width, dim=0),
            mask=encoded.mask.repeat_interleave(width, dim=0),
        )
        flat = chunk.reshape(batch * width, length + 1)
        log_probs = model.decoder_logits(repeated, flat).float().log_softmax(-1)
        token_scores = log_probs.gather(-1, flat[..., None]).squeeze(-1)  # (B·C, L + 2)
        scores.append(token_scores.sum(-1).view(batch, width))
    return torch.cat(scores, dim=1).cpu()


def exhaustive_id_scores(
    model: GenerativeRetriever,
    queries: QueryBatch,
    tokens: torch.Tensor,
    pairs_per_pass: int = PAIRS_PER_PASS,
) -> torch.Tensor:
    """queries (B queries), tokens (N, L + 1) int64 every catalogue ID → (B, N) float32
    log p(ID | query) of every item for every query: the exact ranking beam search approximates."""
    tokens = torch.as_tensor(tokens, dtype=torch.int64)
    batch = queries.text_tokens.shape[0]
    return id_sequence_scores(model, queries, tokens.expand(batch, -1, -1), pairs_per_pass)
