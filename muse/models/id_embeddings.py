"""All ID embedding tables of a ranking model, in one torchrec EmbeddingCollection.

Sequence roles (target, searched, recent, whole-history) share the item and category tables.
Two lookups over the same weights: ``forward`` goes through the KeyedJaggedTensor path so that
DistributedModelParallel can shard the collection and fuse a row-wise optimiser into it;
``lookup_plain`` is ``F.embedding`` on the weight tensors, which ``torch.onnx.export`` can trace.
"""

from __future__ import annotations

import functools

import torch
from torch import nn
from torchrec import EmbeddingCollection, EmbeddingConfig, KeyedJaggedTensor

from muse.models.feature_spec import FeatureSpec

ITEM_TABLE = "item"
CATEGORY_TABLE = "category"
SEQUENCE_ROLES = ("target", "selected", "recent", "history")


def item_feature(role: str) -> str:
    """Feature name of the item ids in ``role`` (one of SEQUENCE_ROLES)."""
    return f"{role}_item"


def category_feature(role: str) -> str:
    """Feature name of the category ids in ``role`` (one of SEQUENCE_ROLES)."""
    return f"{role}_category"


def attribute_feature(name: str) -> str:
    return f"attribute_{name}"


def profile_feature(name: str) -> str:
    return f"profile_{name}"


class IdEmbeddings(nn.Module):
    """Embeds dense (B, n) index tensors, keyed by feature name, into (B, n, D) float tensors."""

    def __init__(self, features: FeatureSpec, dim: int, init_std: float) -> None:
        super().__init__()
        self.dim = dim
        init = functools.partial(nn.init.normal_, mean=0.0, std=init_std)
        tables = [
            EmbeddingConfig(
                name=ITEM_TABLE,
                num_embeddings=features.item_vocabulary_size,
                embedding_dim=dim,
                feature_names=[item_feature(role) for role in SEQUENCE_ROLES],
                init_fn=init,
            ),
            EmbeddingConfig(
                name=CATEGORY_TABLE,
                num_embeddings=features.category_vocabulary_size,
                embedding_dim=dim,
                feature_names=[category_feature(role) for role in SEQUENCE_ROLES],
                init_fn=init,
            ),
        ]
        for name, size in features.item_attributes:
            tables.append(
                EmbeddingConfig(
                    name=attribute_feature(name),
                    num_embeddings=size,
                    embedding_dim=dim,
                    feature_names=[attribute_feature(name)],
                    init_fn=init,
                )
            )
        for name, size in features.profile_features:
            tables.append(
                EmbeddingConfig(
                    name=profile_feature(name),
                    num_embeddings=size,
                    embedding_dim=dim,
                    feature_names=[profile_feature(name)],
                    init_fn=init,
                )
            )
        self.table_of_feature = {
            feature: table.name for table in tables for feature in table.feature_names
        }
        self.feature_names = list(self.table_of_feature)
        self.collection = EmbeddingCollection(tables=tables, device=torch.device("cpu"))

    def forward(self, ids: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Through torchrec. ids: feature → (B, n) int64 (features left out are sent empty).

        Returns feature → (B, n, D) float32 for each feature given.
        """
        unknown = set(ids) - set(self.feature_names)
        if unknown:
            raise KeyError(f"unknown ID features {sorted(unknown)}")
        batch = next(iter(ids.values())).shape[0]
        device = next(iter(ids.values())).device
        values, lengths = [], []
        for name in self.feature_names:
            if name in ids:
                values.append(ids[name].reshape(-1))
                lengths.append(
                    torch.full((batch,), ids[name].shape[1], dtype=torch.int64, device=device)
                )
            else:
                lengths.append(torch.zeros(batch, dtype=torch.int64, device=device))
        features = KeyedJaggedTensor(
            keys=self.feature_names,
            values=torch.cat(values).to(torch.int64),
            lengths=torch.cat(lengths),
        )
        embedded = self.collection(features)
        return {
            name: embedded[name].values().reshape(batch, tensor.shape[1], self.dim)
            for name, tensor in ids.items()
        }

    def lookup_plain(self, ids: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``F.embedding`` over the same weights (ONNX-exportable). Same shapes as ``forward``."""
        return {
            name: nn.functional.embedding(tensor, self.weight(self.table_of_feature[name]))
            for name, tensor in ids.items()
        }

    def weight(self, table: str) -> torch.Tensor:
        """The (V, D) weight of ``table`` (unsharded collections only)."""
        return self.collection.embeddings[table].weight
