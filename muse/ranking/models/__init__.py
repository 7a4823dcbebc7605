"""Ranking models: MUSE, its baselines and ablations, behind one interface.

Build::

    features = FeatureSpec.from_dataset(dataset)          # vocabulary sizes, MM width
    table = muse.search.EmbeddingTable.from_dataset(dataset)
    model = build_ranking_model(config.model, features, table)   # RankingModel (nn.Module)
    output = model(batch)                                  # RankingOutput

Config (``muse.ranking.models.ranking_config``, the ``[model]`` table of ``configs/ranking/*.toml``):
``RankingModelConfig`` with ``search: SearchConfig`` (``kind: SearchKind`` = none |
multimodal_cosine (MUSE) | same_category (SIM-hard) | soft_inner_product (SIM-soft) | simhash
(ETA) | shared_attention (TWIN); ``top_k`` K = 50), ``esu: EsuConfig``, ``recent_length`` N = 50
(0 = whole history), ``id_embedding_dim`` (16), ``tower_hidden``.
``EsuConfig`` (``esu_config.py``, the ``[model.esu.*]`` tables) nests one table per part:
``short_term: ShortTermAttentionConfig`` (``kind: ShortTermAttentionKind`` = none | target |
activation_unit (DIN); ``variant``; ``activation_unit_hidden``), ``long_term:
LongTermAttentionConfig`` (``kind: LongTermAttentionKind`` = none | target | similarity_aware
(SA-TA); ``variant: AttentionVariant`` = code | paper; ``temperature_init``, ``fusion_init``),
``simtier: SimTierConfig`` (``top_k``, ``recent``, ``tier_width``), ``mean_pool: MeanPoolConfig``
(``top_k``, ``recent``). ``esu.reads_selected_cosines`` / ``esu.reads_recent_cosines`` say which
cosines the ESU reads.

RankingModel (B batch, L history, K searched, N recent, D ID dim, P profile, A attributes):
- ``forward(batch: muse.ranking.batch.RankingBatch) -> RankingOutput(logits (B,), auxiliary_logits (B,)
  | None)``; auxiliary_logits is SIM-soft's soft-search head (its auxiliary CTR loss). Losses
  live in training code. ``forward == score(select(batch))`` for the logits.
- ``select(batch) -> ScoringInputs``: the GSU (search, gathering; reads the MM table; not
  exported). ``select_with_auxiliary(batch) -> Selection(inputs, auxiliary_logits)``.
- ``score(inputs: ScoringInputs) -> logits (B,)``: ID lookup through torchrec (training) →
  ``model.esu`` (``Esu``, esu.py: features (B, esu.output_width)) → ``model.tower``.
  ``score_plain(inputs)``: the same over ``F.embedding`` on the same weights (ONNX path).
- ``model.sparse``: ``IdEmbeddings``; ``model.sparse.collection`` is the one torchrec
  EmbeddingCollection holding every ID table (give it the sparse optimiser / DMP sharding);
  everything else is dense. ``model.table`` is the frozen MM ``EmbeddingTable`` (not a parameter).

ScoringInputs (NamedTuple, all torch tensors; ONNX input names are these field names):
    user_profile (B, P) int64 · target_item (B,) int64 · target_category (B,) int64 ·
    target_attributes (B, A) int64 ·
    selected_items (B, K) int64 · selected_categories (B, K) int64 · selected_cosines (B, K)
    float32 · selected_mask (B, K) bool   (best first; 0 / 0.0 / False where fewer than K) ·
    recent_items (B, N) int64 · recent_categories (B, N) int64 · recent_cosines (B, N) float32 ·
    recent_mask (B, N) bool   (oldest first, right-aligned, padding on the left).
K = 0 for models without a search (DIN).

Configs: configs/ranking/{muse, din_last50, din_full, sim_hard, sim_soft, eta, twin,
muse_id_ta_only, muse_simtier_only, muse_ta_simtier, muse_sata_only, muse_paper_sata}.toml.
The baselines with a search (SIM-hard, SIM-soft, ETA, TWIN) all feed MUSE's ESU; only the first
stage differs. MUSE's search is ``muse.search.cosine_top_k.top_k`` (one import line in
multimodal_search.py; the reference is compared against it in the tests).

ONNX: ``muse.ranking.models.scoring_graph.export_scoring_onnx(model, example_inputs, path)`` exports
``score_plain`` (dynamo exporter, dynamic batch/top_k/recent axes, output name ``logits``);
``ScoringGraph(model)`` is the exported module. Rows with no history are handled explicitly.
"""

from muse.ranking.models.esu_config import (
    AttentionVariant,
    EsuConfig,
    LongTermAttentionConfig,
    LongTermAttentionKind,
    MeanPoolConfig,
    ShortTermAttentionConfig,
    ShortTermAttentionKind,
    SimTierConfig,
)
from muse.ranking.models.feature_spec import FeatureSpec
from muse.ranking.models.ranking_config import RankingModelConfig, SearchConfig, SearchKind
from muse.ranking.models.ranking_model import RankingModel, build_ranking_model
from muse.ranking.models.scoring_inputs import RankingOutput, ScoringInputs, Selection

__all__ = [
    "AttentionVariant",
    "EsuConfig",
    "FeatureSpec",
    "LongTermAttentionConfig",
    "LongTermAttentionKind",
    "MeanPoolConfig",
    "RankingModel",
    "RankingModelConfig",
    "RankingOutput",
    "ScoringInputs",
    "SearchConfig",
    "SearchKind",
    "Selection",
    "ShortTermAttentionConfig",
    "ShortTermAttentionKind",
    "SimTierConfig",
    "build_ranking_model",
]
