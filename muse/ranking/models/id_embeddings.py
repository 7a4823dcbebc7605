"""All ID embedding tables of a ranking model, in one torchrec EmbeddingCollection.

Sequence roles (target, searched, recent, whole-history) share the item and category tables.
Two lookups over the same weights: ``forward`` goes through the KeyedJaggedTensor path so that
DistributedModelParallel can shard the collection and fuse a row-wise optimiser into it;
``lookup_plain`` is ``F.embedding`` on the weight tensors, which ``torch.onnx.export`` can trace.
"""

from __future__ import annotations

import functools
import logging

import torch
from torch import nn
from torchrec import EmbeddingCollection, EmbeddingConfig, KeyedJaggedTensor

from muse.ranking.models.feature_spec import FeatureSpec

ITEM_TABLE = "item"
CATEGORY_TABLE = "category"
SEQUENCE_ROLES = ("target", "selected", "recent", "history")

# Every KeyedJaggedTensor asks torch.fx's is_fx_tracing(), whose deprecation notice is for torchrec.
logging.getLogger("torch.fx._symbolic_trace").addFilter(
    lambda record: not record.getMessage().startswith("is_fx_tracing will return true")
)


def item_feature(role: str) -> str:
    """Feature name of the item ids in ``role`` (one of SEQUENCE_ROLES)."""
    return f"{role}_item"


def category_feature(role: str) -> str:
    """Feature name of the category ids in ``role`` (one of SEQUENCE_ROLES)."""
    return f"{role}_category"


def attribute_feature(name: str) -> str:
    """Feature (and table) name of the target's item attribute ``name``."""
    return f"attribute_{name}"


def profile_feature(name: str) -> str:
    """Feature (and table) name of the user profile feature ``name``."""
    return f"user_{name}"


class IdEmbeddings(nn.Module):
    """Embeds dense (B, n) index tensors, keyed by feature name, into (B, n, D) float tensors.

    The torchrec collection has one jagged feature per table (named after the table): every
    feature of a table is concatenated along each sample's row and looked up at once, so a shared
    table costs one lookup and one gradient per step however many roles read it.
    """

    def __init__(self, features: FeatureSpec, dim: int, init_std: float) -> None:
        super().__init__()
        self.dim = dim
        init = functools.partial(nn.init.normal_, mean=0.0, std=init_std)
        roles = {
            ITEM_TABLE: (features.item_vocabulary_size, [item_feature(r) for r in SEQUENCE_ROLES]),
            CATEGORY_TABLE: (
                features.category_vocabulary_size,
                [category_feature(r) for r in SEQUENCE_ROLES],
            ),
        }
        for name, size in features.item_attributes:
            roles[attribute_feature(name)] = (size, [attribute_feature(name)])
        for name, size in features.profile_features:
            roles[profile_feature(name)] = (size, [profile_feature(name)])
        self.table_of_feature = {
            feature: table
            for table, (_, feature_names) in roles.items()
            for feature in feature_names
        }
        self.table_names = list(roles)
        tables = [
            EmbeddingConfig(
                name=table,
                num_embeddings=size,
                embedding_dim=dim,
                feature_names=[table],
                init_fn=init,
            )
            for table, (size, _) in roles.items()
        ]
        self.collection = EmbeddingCollection(tables=tables, device=torch.device("cpu"))

    def forward(self, ids: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Through torchrec. ids: feature → (B, n) int64, all with the same B.

        Returns feature → (B, n, D) float32 for each feature given.
        """
        unknown = set(ids) - set(self.table_of_feature)
        if unknown or not ids:
            raise KeyError(f"unknown or no ID features: {sorted(unknown)}")
        first = next(iter(ids.values()))
        batch, device = first.shape[0], first.device
        grouped: dict[str, list[str]] = {table: [] for table in self.table_names}
        for name in ids:
            grouped[self.table_of_feature[name]].append(name)
        values, lengths = [], []
        for table in self.table_names:
            rows = [ids[name] for name in grouped[table]]
            width = sum(row.shape[1] for row in rows)
            if width:
                values.append(torch.cat(rows, dim=1).reshape(-1))
            lengths.append(torch.full((batch,), width, dtype=torch.int64, device=device))
        features = KeyedJaggedTensor(
            keys=self.table_names,
            values=torch.cat(values).to(torch.int64),
            lengths=torch.cat(lengths),
        )
        embedded = self.collection(features)
        result: dict[str, torch.Tensor] = {}
        for table in self.table_names:
            widths = [ids[name].shape[1] for name in grouped[table]]
            if not widths:
                continue
            rows = embedded[table].values().reshape(batch, sum(widths), self.dim)
            result.update(zip(grouped[table], torch.split(rows, widths, dim=1), strict=True))
        return result

    def lookup_plain(self, ids: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``F.embedding`` over the same weights (ONNX-exportable). Same shapes as ``forward``."""
        return {
            name: nn.functional.embedding(tensor, self.weight(self.table_of_feature[name]))
            for name, tensor in ids.items()
        }

    def weight(self, table: str) -> torch.Tensor:
        """The (V, D) weight of ``table`` (unsharded collections only)."""
        return self.collection.embeddings[table].weight
