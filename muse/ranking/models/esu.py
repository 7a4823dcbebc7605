"""The second stage (ESU): features of the searched top-K and the recent window for the tower.

Output, in this order, each part present only when its config switches it on: short-term
attention, long-term attention (SA-TA in MUSE), mean of the top-K, mean of the recent window, the
target (item ⊕ category), the target's attributes and the user's profile features, SimTier of the
top-K cosines, SimTier of the recent cosines. ``output_width`` is the sum of the parts' widths,
each reported by its module, so the tower is sized from it and nothing counts widths by hand.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from muse.ranking.models.activation_unit_attention import ActivationUnitAttention
from muse.ranking.models.esu_config import EsuConfig, LongTermAttentionKind, ShortTermAttentionKind
from muse.ranking.models.masked_pooling import attention_pool, masked_mean
from muse.ranking.models.similarity_aware_attention import SimilarityAwareAttention
from muse.ranking.models.simtier import SimTier
from muse.ranking.models.target_attention import IdTargetAttention


class EsuInputs(NamedTuple):
    """ID embeddings, cosines and masks the ESU reads (B batch, K kept, N recent, D ID width).

    target: (B, 2D) target item ⊕ category embedding.
    context: (B, F, D) embeddings of the target's attributes, then the user's profile features.
    selected: (B, K, 2D) item ⊕ category of the searched behaviours, or None when the ESU reads
        no top-K (``EsuConfig.reads_selected_behaviours`` is False).
    selected_cosines: (B, K) float32; selected_mask: (B, K) bool.
    recent: (B, N, 2D) item ⊕ category of the recent behaviours.
    recent_cosines: (B, N) float32; recent_mask: (B, N) bool.
    """

    target: torch.Tensor
    context: torch.Tensor
    selected: torch.Tensor | None
    selected_cosines: torch.Tensor
    selected_mask: torch.Tensor
    recent: torch.Tensor
    recent_cosines: torch.Tensor
    recent_mask: torch.Tensor


class EsuRequestInputs(NamedTuple):
    """``EsuInputs`` for R requests (users) with C candidates in all, per-user parts given once.

    request: (C,) int64, the request (row of the per-user tensors) of each candidate.
    target: (C, 2D); attributes: (C, A, D) the target's attribute embeddings.
    profile: (R, P, D) the user's profile embeddings.
    behaviours: (U, 2D) the distinct searched behaviours of all candidates (item ⊕ category).
    selected_index: (C, K) int64 row of ``behaviours`` of each searched behaviour (any where
        masked); selected_cosines: (C, K) float32; selected_mask: (C, K) bool.
    recent: (R, N, 2D); recent_mask: (R, N) bool; recent_cosines: (C, N) float32.
    """

    request: torch.Tensor
    target: torch.Tensor
    attributes: torch.Tensor
    profile: torch.Tensor
    behaviours: torch.Tensor
    selected_index: torch.Tensor
    selected_cosines: torch.Tensor
    selected_mask: torch.Tensor
    recent: torch.Tensor
    recent_mask: torch.Tensor
    recent_cosines: torch.Tensor


class Esu(nn.Module):
    """SimTier + long-term (SA-TA) + short-term attention + means, concatenated for the tower.

    ``id_embedding_dim`` is D (behaviours and the target are item ⊕ category, 2D wide);
    ``context_features`` is F, the number of target-attribute and profile embeddings in
    ``EsuInputs.context``.
    """

    def __init__(self, config: EsuConfig, id_embedding_dim: int, context_features: int) -> None:
        super().__init__()
        self.config = config
        self.behaviour_width = 2 * id_embedding_dim  # item ⊕ category
        self.context_width = id_embedding_dim * context_features
        width = self.behaviour_width
        # Keep this order (short, long, SimTier top-K, SimTier recent): a seed's weights follow it.
        short_term = config.short_term
        self.short_term: IdTargetAttention | ActivationUnitAttention | None = None
        if short_term.kind is ShortTermAttentionKind.TARGET:
            self.short_term = IdTargetAttention(width, short_term.variant)
        elif short_term.kind is ShortTermAttentionKind.ACTIVATION_UNIT:
            self.short_term = ActivationUnitAttention(width, short_term.activation_unit_hidden)

        long_term = config.long_term
        self.long_term: IdTargetAttention | None = None
        if long_term.kind is LongTermAttentionKind.TARGET:
            self.long_term = IdTargetAttention(width, long_term.variant)
        elif long_term.kind is LongTermAttentionKind.SIMILARITY_AWARE:
            self.long_term = SimilarityAwareAttention(
                width, long_term.variant, long_term.temperature_init, long_term.fusion_init
            )

        simtier = config.simtier
        self.simtier_top_k = SimTier(simtier.tier_width) if simtier.top_k else None
        self.simtier_recent = SimTier(simtier.tier_width) if simtier.recent else None

    @property
    def output_width(self) -> int:
        """Width of ``forward``'s output."""
        parts = (self.short_term, self.long_term, self.simtier_top_k, self.simtier_recent)
        reported = sum(part.output_width for part in parts if part is not None)
        mean_pools = int(self.config.mean_pool.top_k) + int(self.config.mean_pool.recent)
        target_and_means = self.behaviour_width * (1 + mean_pools)
        return reported + target_and_means + self.context_width

    def forward(self, inputs: EsuInputs) -> torch.Tensor:
        """Shapes as in :class:`EsuInputs` → features (B, output_width)."""
        parts = []
        if self.short_term is not None:
            parts.append(
                self.short_term(
                    inputs.target, inputs.recent, inputs.recent_cosines, inputs.recent_mask
                )
            )
        if self.config.reads_selected_behaviours:
            selected = inputs.selected
            if selected is None:
                raise ValueError("this ESU reads the top-K, but EsuInputs.selected is None")
            if self.long_term is not None:
                parts.append(
                    self.long_term(
                        inputs.target, selected, inputs.selected_cosines, inputs.selected_mask
                    )
                )
            if self.config.mean_pool.top_k:
                parts.append(masked_mean(selected, inputs.selected_mask))
        if self.config.mean_pool.recent:
            parts.append(masked_mean(inputs.recent, inputs.recent_mask))
        parts.append(inputs.target)
        parts.append(inputs.context.flatten(1))
        if self.simtier_top_k is not None:
            parts.append(self.simtier_top_k(inputs.selected_cosines, inputs.selected_mask))
        if self.simtier_recent is not None:
            parts.append(self.simtier_recent(inputs.recent_cosines, inputs.recent_mask))
        return torch.cat(parts, dim=-1)

    def forward_requests(self, inputs: EsuRequestInputs) -> torch.Tensor:
        """``forward`` with per-user work done once per request (shapes in EsuRequestInputs).

        The recent window's keys, values and mean are computed once per request, and the searched
        behaviours' keys and values once per distinct behaviour, then gathered per candidate; the
        features equal ``forward``'s on the same candidates, broadcast (a test compares them).
        Returns (C, output_width).
        """
        request = inputs.request
        recent_mask = inputs.recent_mask[request]
        parts = []
        if isinstance(self.short_term, IdTargetAttention):
            keys, values = self.short_term.keys_and_values(inputs.recent)
            parts.append(
                self.short_term.forward_shared(
                    inputs.target, keys, values, request, inputs.recent_cosines, recent_mask
                )
            )
        elif self.short_term is not None:
            parts.append(
                self.short_term(
                    inputs.target, inputs.recent[request], inputs.recent_cosines, recent_mask
                )
            )
        if self.config.reads_selected_behaviours:
            index = inputs.selected_index
            mask = inputs.selected_mask
            if self.long_term is not None:
                keys, values = self.long_term.keys_and_values(inputs.behaviours[None])
                logits = self.long_term.logits_from_keys(
                    inputs.target, nn.functional.embedding(index, keys[0]), inputs.selected_cosines
                )
                parts.append(
                    attention_pool(logits, nn.functional.embedding(index, values[0]), mask)
                )
            if self.config.mean_pool.top_k:
                parts.append(masked_mean(nn.functional.embedding(index, inputs.behaviours), mask))
        if self.config.mean_pool.recent:
            parts.append(masked_mean(inputs.recent, inputs.recent_mask)[request])
        parts.append(inputs.target)
        parts.append(inputs.attributes.flatten(1))
        parts.append(inputs.profile.flatten(1)[request])
        if self.simtier_top_k is not None:
            parts.append(self.simtier_top_k(inputs.selected_cosines, inputs.selected_mask))
        if self.simtier_recent is not None:
            parts.append(self.simtier_recent(inputs.recent_cosines, recent_mask))
        return torch.cat(parts, dim=-1)
