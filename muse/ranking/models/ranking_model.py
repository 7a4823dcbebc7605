"""The ranking model: first stage (GSU, ``select``) then second stage (ESU + tower, ``score``).

What is unusual here:
- The item multimodal (MM) table is held by reference (frozen, possibly memory-mapped numpy),
  not as a parameter; only ``select`` reads it.
- ``select`` does the search and all gathering; ``score`` is pure tensor work over the few
  selected ids, so it exports to ONNX (through ``lookup_plain`` over the same weights).
- Every ID table lives in ``model.sparse`` (one torchrec EmbeddingCollection) so training can
  give it a row-wise sparse optimiser and DistributedModelParallel can shard it.
- Rows with no history take explicit zero paths (see masked_pooling), never a masked softmax.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from muse.core.ids import PADDING_INDEX
from muse.ranking.batch import RankingBatch
from muse.ranking.models.activation_unit_attention import ActivationUnitAttention
from muse.ranking.models.category_search import SameCategorySearch
from muse.ranking.models.feature_spec import FeatureSpec
from muse.ranking.models.id_embeddings import (
    IdEmbeddings,
    attribute_feature,
    category_feature,
    item_feature,
    profile_feature,
)
from muse.ranking.models.masked_pooling import masked_mean
from muse.ranking.models.multimodal_search import MultimodalCosineSearch
from muse.ranking.models.ranking_config import (
    LongTermAttention,
    RankingModelConfig,
    SearchKind,
    ShortTermAttention,
)
from muse.ranking.models.scoring_inputs import RankingOutput, ScoringInputs, Selection
from muse.ranking.models.search_stage import SearchRequest
from muse.ranking.models.shared_attention_search import SharedAttentionSearch
from muse.ranking.models.simhash_search import SimHashSearch
from muse.ranking.models.similarity_aware_attention import SimilarityAwareAttention
from muse.ranking.models.simtier import SimTier
from muse.ranking.models.soft_search import SoftInnerProductSearch
from muse.ranking.models.target_attention import IdTargetAttention
from muse.ranking.models.tower import Tower
from muse.search import EmbeddingTable
from muse.search.row_cosines import row_cosines

Lookup = Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]


class RankingModel(nn.Module):
    """CTR model for (user history, target item) pairs; see the module docstring."""

    def __init__(
        self, config: RankingModelConfig, features: FeatureSpec, table: EmbeddingTable
    ) -> None:
        super().__init__()
        if config.uses_multimodal and table.dim != features.multimodal_dim:
            raise ValueError(
                f"MM table width {table.dim} ≠ FeatureSpec.multimodal_dim {features.multimodal_dim}"
            )
        self.config = config
        self.features = features
        self.table = table
        dim = config.id_embedding_dim
        width = 2 * dim  # item ⊕ category
        self.sparse = IdEmbeddings(features, dim, config.embedding_init_std)
        variant = config.similarity_aware_variant

        self.short_term: IdTargetAttention | ActivationUnitAttention | None = None
        if config.short_term_attention is ShortTermAttention.TARGET:
            self.short_term = IdTargetAttention(width, variant)
        elif config.short_term_attention is ShortTermAttention.ACTIVATION_UNIT:
            self.short_term = ActivationUnitAttention(width, config.activation_unit_hidden)

        self.long_term: IdTargetAttention | None = None
        if config.long_term_attention is LongTermAttention.TARGET:
            self.long_term = IdTargetAttention(width, variant)
        elif config.long_term_attention is LongTermAttention.SIMILARITY_AWARE:
            self.long_term = SimilarityAwareAttention(
                width, variant, config.temperature_init, config.fusion_init
            )

        self.search = _build_search(config, width, features)
        self.simtier_top_k = SimTier(config.simtier_tier_width) if config.simtier_top_k else None
        self.simtier_recent = SimTier(config.simtier_tier_width) if config.simtier_recent else None
        self.tower = Tower(self.tower_input_width(), config.tower_hidden)

    def tower_input_width(self) -> int:
        """Width of the concatenated features the tower reads."""
        config, dim = self.config, self.config.id_embedding_dim
        pooled_behaviours = sum(
            [
                self.short_term is not None,
                self.long_term is not None,
                config.mean_pool_top_k,
                config.mean_pool_recent,
            ]
        )
        target_and_user = (
            2 + len(self.features.item_attributes) + len(self.features.profile_features)
        )
        simtier = config.simtier_bins * (int(config.simtier_top_k) + int(config.simtier_recent))
        return 2 * dim * pooled_behaviours + dim * target_and_user + simtier

    # ---- first stage -------------------------------------------------------------------------

    def select(self, batch: RankingBatch) -> ScoringInputs:
        """GSU: search the history and gather what ``score`` needs (see :class:`ScoringInputs`)."""
        return self.select_with_auxiliary(batch).inputs

    def select_with_auxiliary(self, batch: RankingBatch) -> Selection:
        """``select`` plus the search's auxiliary logits (B,) when it has them (SIM-soft).

        batch: RankingBatch with histories (B, L). Returns Selection with K = search.top_k
        (0 without a search) and N = recent_length (L when recent_length is 0).
        """
        target_multimodal = None
        if self.config.uses_multimodal:
            target_multimodal = self.table.gather_normalized(batch.target_item)  # (B, Dm)
        recent = self._select_recent(batch, target_multimodal)
        searched, auxiliary_logits = self._select_searched(batch, target_multimodal)
        inputs = ScoringInputs(
            batch.user_profile,
            batch.target_item,
            batch.target_category,
            batch.target_attributes,
            *searched,
            *recent,
        )
        return Selection(inputs=inputs, auxiliary_logits=auxiliary_logits)

    def _select_recent(
        self, batch: RankingBatch, target_multimodal: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The last N behaviours: items, categories (B, N), cosines (B, N), mask (B, N)."""
        window = self.config.recent_length or batch.history_items.shape[1]
        items = _right_window(batch.history_items, window)
        categories = _right_window(batch.history_categories, window)
        mask = items != PADDING_INDEX
        cosines = self._cosines(target_multimodal, items, mask, self.config.simtier_recent)
        return items, categories, cosines, mask

    def _select_searched(
        self, batch: RankingBatch, target_multimodal: torch.Tensor | None
    ) -> tuple[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor | None]:
        """The top-K: (items, categories (B, K), cosines (B, K), mask (B, K)), auxiliary logits."""
        items, categories = batch.history_items, batch.history_categories
        if self.search is None:
            empty = items.new_zeros((items.shape[0], 0))
            return (empty, empty, empty.to(torch.float32), empty.to(torch.bool)), None
        found = self.search(
            SearchRequest(batch, self.table, target_multimodal, self.sparse, self.long_term)
        )
        mask = found.mask
        positions = found.positions.clamp_min(0)
        selected_items = torch.gather(items, 1, positions).masked_fill(~mask, PADDING_INDEX)
        selected_categories = torch.gather(categories, 1, positions).masked_fill(
            ~mask, PADDING_INDEX
        )
        cosines = found.cosines
        if cosines is None:
            needed = (
                self.config.long_term_attention is LongTermAttention.SIMILARITY_AWARE
                or self.config.simtier_top_k
            )
            cosines = self._cosines(target_multimodal, selected_items, mask, needed)
        return (
            selected_items,
            selected_categories,
            cosines.to(torch.float32),
            mask,
        ), found.auxiliary_logits

    def _cosines(
        self,
        target_multimodal: torch.Tensor | None,
        items: torch.Tensor,
        mask: torch.Tensor,
        needed: bool,
    ) -> torch.Tensor:
        """MM cosine of each (B, n) item to the target → (B, n) float32, 0 where masked or unneeded."""
        if not needed or target_multimodal is None:
            return torch.zeros(items.shape, dtype=torch.float32, device=items.device)
        return row_cosines(self.table, items, target_multimodal).masked_fill(~mask, 0.0)

    # ---- second stage ------------------------------------------------------------------------

    def score(self, inputs: ScoringInputs) -> torch.Tensor:
        """ESU + tower through the torchrec lookup (training path). Returns logits (B,)."""
        return self.score_with(inputs, self.sparse)

    def score_plain(self, inputs: ScoringInputs) -> torch.Tensor:
        """Same as ``score`` with ``F.embedding`` over the same weights (the ONNX export path)."""
        return self.score_with(inputs, self.sparse.lookup_plain)

    def score_with(self, inputs: ScoringInputs, lookup: Lookup) -> torch.Tensor:
        """ESU + tower with ID embeddings from ``lookup``. Shapes as in ScoringInputs → (B,)."""
        config = self.config
        ids = {
            item_feature("target"): inputs.target_item.unsqueeze(1),
            category_feature("target"): inputs.target_category.unsqueeze(1),
            item_feature("recent"): inputs.recent_items,
            category_feature("recent"): inputs.recent_categories,
        }
        if self.search is not None:
            ids[item_feature("selected")] = inputs.selected_items
            ids[category_feature("selected")] = inputs.selected_categories
        for column, (name, _) in enumerate(self.features.item_attributes):
            ids[attribute_feature(name)] = inputs.target_attributes[:, column : column + 1]
        for column, (name, _) in enumerate(self.features.profile_features):
            ids[profile_feature(name)] = inputs.user_profile[:, column : column + 1]
        embedded = lookup(ids)

        target = torch.cat(
            [embedded[item_feature("target")], embedded[category_feature("target")]], -1
        )[:, 0]
        recent = torch.cat(
            [embedded[item_feature("recent")], embedded[category_feature("recent")]], -1
        )
        parts = []
        if self.short_term is not None:
            parts.append(self.short_term(target, recent, inputs.recent_cosines, inputs.recent_mask))
        if self.search is not None:
            selected = torch.cat(
                [embedded[item_feature("selected")], embedded[category_feature("selected")]], -1
            )
            if self.long_term is not None:
                parts.append(
                    self.long_term(target, selected, inputs.selected_cosines, inputs.selected_mask)
                )
            if config.mean_pool_top_k:
                parts.append(masked_mean(selected, inputs.selected_mask))
        if config.mean_pool_recent:
            parts.append(masked_mean(recent, inputs.recent_mask))
        parts.append(target)
        parts += [
            embedded[attribute_feature(name)][:, 0] for name, _ in self.features.item_attributes
        ]
        parts += [
            embedded[profile_feature(name)][:, 0] for name, _ in self.features.profile_features
        ]
        if self.simtier_top_k is not None:
            parts.append(self.simtier_top_k(inputs.selected_cosines, inputs.selected_mask))
        if self.simtier_recent is not None:
            parts.append(self.simtier_recent(inputs.recent_cosines, inputs.recent_mask))
        return self.tower(torch.cat(parts, dim=-1))

    def forward(self, batch: RankingBatch) -> RankingOutput:
        """score(select(batch)). batch histories (B, L) → logits (B,), auxiliary_logits (B,) | None."""
        selection = self.select_with_auxiliary(batch)
        return RankingOutput(
            logits=self.score(selection.inputs), auxiliary_logits=selection.auxiliary_logits
        )


def build_ranking_model(
    config: RankingModelConfig, features: FeatureSpec, table: EmbeddingTable
) -> RankingModel:
    """The ranking model ``config`` describes, sized by ``features``, searching ``table``."""
    return RankingModel(config, features, table)


def _build_search(
    config: RankingModelConfig, width: int, features: FeatureSpec
) -> nn.Module | None:
    search = config.search
    if search.kind is SearchKind.NONE:
        return None
    if search.kind is SearchKind.MULTIMODAL_COSINE:
        return MultimodalCosineSearch(search.top_k)
    if search.kind is SearchKind.SAME_CATEGORY:
        return SameCategorySearch(search.top_k)
    if search.kind is SearchKind.SOFT_INNER_PRODUCT:
        return SoftInnerProductSearch(
            width, search.soft_search_dim, search.auxiliary_hidden, search.top_k
        )
    if search.kind is SearchKind.SIMHASH:
        return SimHashSearch(
            features.multimodal_dim, search.simhash_bits, search.simhash_seed, search.top_k
        )
    if search.kind is SearchKind.SHARED_ATTENTION:
        return SharedAttentionSearch(search.top_k)
    raise ValueError(f"unhandled search kind {search.kind}")


def _right_window(history: torch.Tensor, window: int) -> torch.Tensor:
    """The last ``window`` positions of right-aligned (B, L) histories, left-padded with 0 if L < window."""
    length = history.shape[1]
    if length >= window:
        return history[:, length - window :]
    return torch.nn.functional.pad(history, (window - length, 0), value=PADDING_INDEX)
