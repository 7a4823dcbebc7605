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

from muse.ranking.batch import RankingBatch
from muse.ranking.models.behaviour_selection import BehaviourSelection, SelectionRequest
from muse.ranking.models.esu import Esu, EsuInputs, EsuRequestInputs
from muse.ranking.models.feature_spec import FeatureSpec
from muse.ranking.models.id_embeddings import (
    IdEmbeddings,
    attribute_feature,
    category_feature,
    item_feature,
    profile_feature,
)
from muse.ranking.models.ranking_config import RankingModelConfig
from muse.ranking.models.request_scoring import RequestScoringInputs
from muse.ranking.models.scoring_inputs import RankingOutput, ScoringInputs, Selection
from muse.ranking.models.selection_config import SelectionConfig
from muse.ranking.models.tower import Tower
from muse.search import EmbeddingTable

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
        # Built before the search so that a seed draws the ESU attentions' weights first.
        self.esu = Esu(
            config.esu, dim, len(features.item_attributes) + len(features.profile_features)
        )
        self.selection = BehaviourSelection(
            SelectionConfig.of(config), table, width, features.multimodal_dim
        )
        self.tower = Tower(self.esu.output_width, config.tower_hidden)

    # ---- first stage -------------------------------------------------------------------------

    def select(self, batch: RankingBatch) -> ScoringInputs:
        """GSU: search the history and gather what ``score`` needs (see :class:`ScoringInputs`)."""
        return self.select_with_auxiliary(batch).inputs

    def select_with_auxiliary(self, batch: RankingBatch) -> Selection:
        """``select`` plus the search's auxiliary logits (B,) when it has them (SIM-soft).

        batch: RankingBatch with histories (B, L). Returns Selection with K = search.top_k
        (0 without a search) and N = recent_length (L when recent_length is 0).
        """
        behaviours = self.selection(
            SelectionRequest(
                batch.history_items,
                batch.history_categories,
                batch.target_item[:, None],
                batch.target_category[:, None],
                id_embeddings=self.sparse,
                long_term_attention=self.esu.long_term,
            )
        )
        inputs = ScoringInputs(
            batch.user_profile,
            batch.target_item,
            batch.target_category,
            batch.target_attributes,
            selected_items=behaviours.selected_items,
            selected_categories=behaviours.selected_categories,
            selected_cosines=behaviours.selected_cosines,
            selected_mask=behaviours.selected_mask,
            recent_items=behaviours.recent_items,
            recent_categories=behaviours.recent_categories,
            recent_cosines=behaviours.recent_cosines,
            recent_mask=behaviours.recent_mask,
        )
        return Selection(inputs=inputs, auxiliary_logits=behaviours.auxiliary_logits)

    # ---- second stage ------------------------------------------------------------------------

    def score(self, inputs: ScoringInputs) -> torch.Tensor:
        """ESU + tower through the torchrec lookup (training path). Returns logits (B,)."""
        return self.score_with(inputs, self.sparse)

    def score_plain(self, inputs: ScoringInputs) -> torch.Tensor:
        """Same as ``score`` with ``F.embedding`` over the same weights (the ONNX export path)."""
        return self.score_with(inputs, self.sparse.lookup_plain)

    def score_with(self, inputs: ScoringInputs, lookup: Lookup) -> torch.Tensor:
        """Look up ID embeddings with ``lookup`` → ESU → tower. Shapes as in ScoringInputs → (B,)."""
        return self.tower(self.esu(self._esu_inputs(inputs, lookup)))

    def score_requests(self, inputs: RequestScoringInputs) -> torch.Tensor:
        """``score_plain`` with per-user work done once per request (the serving graph).

        Shapes as in RequestScoringInputs → logits (C,), equal to ``score_plain`` on the same
        candidates written row by row (a test compares them).
        """
        ids, attribute_names, profile_names = self._id_features(
            inputs.target_item,
            inputs.target_category,
            inputs.recent_items,
            inputs.recent_categories,
            (inputs.behaviour_items.unsqueeze(0), inputs.behaviour_categories.unsqueeze(0)),
            inputs.target_attributes,
            inputs.user_profile,
        )
        embedded = self.sparse.lookup_plain(ids)

        dim = self.config.id_embedding_dim

        def stacked(names: list[str], rows: int) -> torch.Tensor:
            if not names:
                return embedded[item_feature("target")].new_zeros((rows, 0, dim))
            return torch.cat([embedded[name] for name in names], dim=1)

        target = _item_and_category(embedded, "target")[:, 0]
        features = self.esu.forward_requests(
            EsuRequestInputs(
                request=inputs.request,
                target=target,
                attributes=stacked(attribute_names, target.shape[0]),
                profile=stacked(profile_names, inputs.user_profile.shape[0]),
                behaviours=_item_and_category(embedded, "selected")[0],
                selected_index=inputs.selected_index,
                selected_cosines=inputs.selected_cosines,
                selected_mask=inputs.selected_mask,
                recent=_item_and_category(embedded, "recent"),
                recent_mask=inputs.recent_mask,
                recent_cosines=inputs.recent_cosines,
            )
        )
        return self.tower(features)

    def _esu_inputs(self, inputs: ScoringInputs, lookup: Lookup) -> EsuInputs:
        """The ID embeddings of ``inputs`` (one lookup for all features) with its cosines and masks."""
        reads_selected = self.config.esu.reads_selected_behaviours
        ids, attribute_names, profile_names = self._id_features(
            inputs.target_item,
            inputs.target_category,
            inputs.recent_items,
            inputs.recent_categories,
            (inputs.selected_items, inputs.selected_categories) if reads_selected else None,
            inputs.target_attributes,
            inputs.user_profile,
        )
        context_names = attribute_names + profile_names
        embedded = lookup(ids)

        target = _item_and_category(embedded, "target")[:, 0]
        if context_names:
            context = torch.cat([embedded[name] for name in context_names], dim=1)
        else:
            context = target.new_zeros((target.shape[0], 0, self.config.id_embedding_dim))
        return EsuInputs(
            target=target,
            context=context,
            selected=_item_and_category(embedded, "selected") if reads_selected else None,
            selected_cosines=inputs.selected_cosines,
            selected_mask=inputs.selected_mask,
            recent=_item_and_category(embedded, "recent"),
            recent_cosines=inputs.recent_cosines,
            recent_mask=inputs.recent_mask,
        )

    def _id_features(
        self,
        target_item: torch.Tensor,
        target_category: torch.Tensor,
        recent_items: torch.Tensor,
        recent_categories: torch.Tensor,
        selected: tuple[torch.Tensor, torch.Tensor] | None,
        target_attributes: torch.Tensor,
        user_profile: torch.Tensor,
    ) -> tuple[dict[str, torch.Tensor], list[str], list[str]]:
        """(ids by feature name for one lookup, attribute feature names, profile feature names).

        target_*: (B,); recent_*: (R, N); selected: (item, category) ids of the searched
        behaviours, any shape, or None; target_attributes: (B, A); user_profile: (R, P).
        """
        ids = {
            item_feature("target"): target_item.unsqueeze(1),
            category_feature("target"): target_category.unsqueeze(1),
            item_feature("recent"): recent_items,
            category_feature("recent"): recent_categories,
        }
        if selected is not None:
            ids[item_feature("selected")], ids[category_feature("selected")] = selected
        attribute_names = [attribute_feature(name) for name, _ in self.features.item_attributes]
        for column, name in enumerate(attribute_names):
            ids[name] = target_attributes[:, column : column + 1]
        profile_names = [profile_feature(name) for name, _ in self.features.profile_features]
        for column, name in enumerate(profile_names):
            ids[name] = user_profile[:, column : column + 1]
        return ids, attribute_names, profile_names

    def forward(self, batch: RankingBatch) -> RankingOutput:
        """score(select(batch)). batch histories (B, L) → logits (B,), auxiliary_logits (B,) | None."""
        selection = self.select_with_auxiliary(batch)
        return RankingOutput(
            logits=self.score(selection.inputs), auxiliary_logits=selection.auxiliary_logits
        )


def _item_and_category(embedded: dict[str, torch.Tensor], role: str) -> torch.Tensor:
    """Item ⊕ category embeddings of ``role``: (..., 2D)."""
    return torch.cat([embedded[item_feature(role)], embedded[category_feature(role)]], -1)


def build_ranking_model(
    config: RankingModelConfig, features: FeatureSpec, table: EmbeddingTable
) -> RankingModel:
    """The ranking model ``config`` describes, sized by ``features``, searching ``table``."""
    return RankingModel(config, features, table)
