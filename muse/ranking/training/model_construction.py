"""Build a ranking model sized by a dataset, and place it for this process (plain or sharded)."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from features.dataset import Dataset
from muse.ranking.models.feature_spec import FeatureSpec
from muse.ranking.models.ranking_config import RankingModelConfig
from muse.ranking.models.ranking_model import build_ranking_model
from muse.search import EmbeddingTable
from muse.training.distributed import DistributedContext
from muse.training.prepared_model import PreparedModel, place_model

ModelFactory = Callable[[RankingModelConfig, FeatureSpec, EmbeddingTable], nn.Module]


def build_model(
    config: RankingModelConfig, dataset: Dataset, model_factory: ModelFactory = build_ranking_model
) -> nn.Module:
    """The unsharded CPU model of ``config``, with ``dataset``'s vocabulary sizes and MM table."""
    return model_factory(
        config, FeatureSpec.from_dataset(dataset), EmbeddingTable.from_dataset(dataset)
    )


def prepare_model(
    config: RankingModelConfig,
    dataset: Dataset,
    context: DistributedContext,
    sparse_learning_rate: float,
    sparse_eps: float,
    model_factory: ModelFactory = build_ranking_model,
) -> PreparedModel:
    """The model sized by ``dataset``; sharded over the ranks when the job is distributed."""
    return place_model(
        build_model(config, dataset, model_factory), context, sparse_learning_rate, sparse_eps
    )
