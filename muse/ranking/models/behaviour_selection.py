"""The first stage (GSU) of every ranking model: search the history, gather what the ESU reads.

One module for training and serving. Training selects for B samples, one target each (C = 1);
the server selects for one user and all C candidates of a request (B = 1), over the history its
per-user cache prepared. Both return the same rows: row b·C + c is history b scored for target c.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from muse.core.ids import PADDING_INDEX
from muse.ranking.models.category_search import SameCategorySearch
from muse.ranking.models.id_embeddings import IdEmbeddings
from muse.ranking.models.multimodal_search import MultimodalCosineSearch
from muse.ranking.models.ranking_config import SearchConfig, SearchKind
from muse.ranking.models.search_stage import SearchRequest
from muse.ranking.models.selection_config import SelectionConfig
from muse.ranking.models.shared_attention_search import SharedAttentionSearch
from muse.ranking.models.simhash_search import SimHashSearch
from muse.ranking.models.soft_search import SoftInnerProductSearch
from muse.ranking.models.target_attention import IdTargetAttention
from muse.search import EmbeddingTable
from muse.search.prepared_history import PreparedHistory
from muse.search.row_cosines import row_cosines, window_cosines


class SelectionRequest(NamedTuple):
    """B histories and C targets for each.

    history_items, history_categories: (B, L) int64 indices, right-aligned (padding on the left).
    target_items, target_categories: (B, C) int64 indices.
    top_k: K for this request (an experiment may override the model's); None keeps the config's.
    prepared_history: the one history (B = 1) already prepared for the fast search, or None.
    id_embeddings, long_term_attention: the model's ID tables and ESU attention, which the
        learned searches (SIM-soft, TWIN) score with; None where the search has no weights.
    """

    history_items: torch.Tensor
    history_categories: torch.Tensor
    target_items: torch.Tensor
    target_categories: torch.Tensor
    top_k: int | None = None
    prepared_history: PreparedHistory | None = None
    id_embeddings: IdEmbeddings | None = None
    long_term_attention: IdTargetAttention | None = None


class SelectedBehaviours(NamedTuple):
    """What the ESU reads about the history, R = B·C rows (row b·C + c: history b, target c).

    selected_items, selected_categories: (R, K) int64, best first; 0 where the mask is False.
    selected_cosines: (R, K) float32 MM cosine to the target (0 masked or unread).
    selected_mask: (R, K) bool. K = 0 without a search.
    recent_items, recent_categories: (R, N) int64, the last N behaviours, oldest first.
    recent_cosines: (R, N) float32. recent_mask: (R, N) bool.
    auxiliary_logits: (R,) the search's own auxiliary CTR logit (SIM-soft), else None.
    selected_positions: (R, K) int64 history position of each selected behaviour (-1 masked),
        so a caller can tell which selected behaviours are one history row.
    """

    selected_items: torch.Tensor
    selected_categories: torch.Tensor
    selected_cosines: torch.Tensor
    selected_mask: torch.Tensor
    recent_items: torch.Tensor
    recent_categories: torch.Tensor
    recent_cosines: torch.Tensor
    recent_mask: torch.Tensor
    auxiliary_logits: torch.Tensor | None
    selected_positions: torch.Tensor


class BehaviourSelection(nn.Module):
    """The GSU: a search (picked by ``SearchKind``) plus the recent window; see the module doc."""

    def __init__(
        self, config: SelectionConfig, table: EmbeddingTable, id_width: int, multimodal_dim: int
    ) -> None:
        super().__init__()
        self.config = config
        self.table = table  # frozen, possibly memory-mapped: held by reference, not a parameter
        self.search = build_search(config.search, id_width, multimodal_dim)

    def forward(self, request: SelectionRequest) -> SelectedBehaviours:
        """Histories (B, L), targets (B, C) → SelectedBehaviours of R = B·C rows."""
        batch, count = request.target_items.shape
        target_multimodal = None
        if self.config.multimodal:
            target_multimodal = self.table.gather_normalized(request.target_items)  # (B, C, D)
        recent = self._recent(request, target_multimodal)
        if self.search is None:
            empty = request.history_items.new_zeros((batch * count, 0))
            selected = (empty, empty, empty.to(torch.float32), empty.to(torch.bool))
            return SelectedBehaviours(
                *selected, *recent, auxiliary_logits=None, selected_positions=empty
            )
        top_k = self.config.search.top_k if request.top_k is None else request.top_k
        found = self.search(
            SearchRequest(
                request.history_items,
                request.history_categories,
                request.target_items,
                request.target_categories,
                target_multimodal,
                top_k,
                self.table,
                request.prepared_history,
                request.id_embeddings,
                request.long_term_attention,
            )
        )
        mask = found.mask.reshape(batch * count, top_k)
        positions = found.positions.clamp_min(0).reshape(batch, count * top_k)
        items = _gather_rows(request.history_items, positions, mask)
        categories = _gather_rows(request.history_categories, positions, mask)
        if found.cosines is not None:
            cosines = found.cosines.reshape(batch * count, top_k).to(torch.float32)
        else:
            cosines = self._cosines(target_multimodal, items, mask, self.config.selected_cosines)
        auxiliary = found.auxiliary_logits
        return SelectedBehaviours(
            items,
            categories,
            cosines,
            mask,
            *recent,
            auxiliary_logits=None if auxiliary is None else auxiliary.reshape(-1),
            selected_positions=found.positions.reshape(batch * count, top_k).masked_fill(~mask, -1),
        )

    def _recent(
        self, request: SelectionRequest, target_multimodal: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The last N behaviours per row: items, categories (R, N), cosines (R, N), mask (R, N)."""
        batch, count = request.target_items.shape
        window = self.config.recent_length or request.history_items.shape[1]
        shape = (batch, count, window)
        window_items = _right_window(request.history_items, window)
        items = window_items[:, None].expand(shape).reshape(batch * count, window)
        categories = _right_window(request.history_categories, window)[:, None].expand(shape)
        categories = categories.reshape(batch * count, window)
        mask = items != PADDING_INDEX
        if count > 1 and target_multimodal is not None and self.config.recent_cosines:
            # Every target of a history reads the same window: score its rows once for all
            # (padding positions already give 0 there).
            cosines = window_cosines(self.table, window_items, target_multimodal)
            cosines = cosines.reshape(batch * count, window)
        else:
            cosines = self._cosines(target_multimodal, items, mask, self.config.recent_cosines)
        return items, categories, cosines, mask

    def _cosines(
        self,
        target_multimodal: torch.Tensor | None,
        items: torch.Tensor,
        mask: torch.Tensor,
        needed: bool,
    ) -> torch.Tensor:
        """MM cosine of each (R, n) item to its row's target → (R, n) float32, 0 masked/unneeded."""
        if not needed or target_multimodal is None or not bool(mask.any()):
            return torch.zeros(items.shape, dtype=torch.float32, device=items.device)
        queries = target_multimodal.reshape(items.shape[0], -1)
        return row_cosines(self.table, items.contiguous(), queries).masked_fill(~mask, 0.0)


def build_search(config: SearchConfig, id_width: int, multimodal_dim: int) -> nn.Module | None:
    """The search module of ``config.kind`` (None for no search)."""
    if config.kind is SearchKind.NONE:
        return None
    if config.kind is SearchKind.MULTIMODAL_COSINE:
        return MultimodalCosineSearch()
    if config.kind is SearchKind.SAME_CATEGORY:
        return SameCategorySearch()
    if config.kind is SearchKind.SOFT_INNER_PRODUCT:
        return SoftInnerProductSearch(id_width, config.soft_search_dim, config.auxiliary_hidden)
    if config.kind is SearchKind.SIMHASH:
        return SimHashSearch(multimodal_dim, config.simhash_bits, config.simhash_seed)
    if config.kind is SearchKind.SHARED_ATTENTION:
        return SharedAttentionSearch()
    raise ValueError(f"unhandled search kind {config.kind}")


def _gather_rows(
    history: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """history (B, L) at positions (B, C·K) → (R, K), PADDING_INDEX where ``mask`` (R, K) is False."""
    return torch.gather(history, 1, positions).reshape(mask.shape).masked_fill(~mask, PADDING_INDEX)


def _right_window(history: torch.Tensor, window: int) -> torch.Tensor:
    """The last ``window`` positions of right-aligned (B, L) histories, left-padded with 0 if L < window."""
    length = history.shape[1]
    if length >= window:
        return history[:, length - window :]
    return torch.nn.functional.pad(history, (window - length, 0), value=PADDING_INDEX)
