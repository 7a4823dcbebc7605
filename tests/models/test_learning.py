"""A wiring check by learning: a click rule only the multimodal path can see (seeded).

Click when some behaviour's MM embedding is close to the target's. On held-out samples MUSE
(SimTier over the cosines) must learn it, and DIN (IDs only) must not come close.
"""

from __future__ import annotations

import torch

from muse.core.metrics import auc
from muse.ranking.batch import RankingBatch
from muse.ranking.models import FeatureSpec
from muse.search import EmbeddingTable
from tests.models.tiny_models import build, random_batch


def _samples(table: EmbeddingTable, seed: int, count: int) -> RankingBatch:
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, 24, (count,), generator=generator).tolist()
    batch = random_batch(lengths, 24, seed=seed)
    targets = table.gather_normalized(batch.target_item)
    cosines = torch.einsum("bd,bld->bl", targets, table.gather_normalized(batch.history_items))
    return batch._replace(label=(cosines.max(dim=1).values > 0.3).float())


def _held_out_auc(name: str, features: FeatureSpec, table: EmbeddingTable) -> float:
    train, test = _samples(table, 30, 512), _samples(table, 31, 512)
    model = build(name, features, table, seed=1).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):
        logits = model(train).logits
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, train.label)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        return auc(test.label.numpy(), model(test).logits.numpy())


def test_muse_learns_a_multimodal_rule_that_din_cannot(
    features: FeatureSpec, table: EmbeddingTable
) -> None:
    muse = _held_out_auc("muse", features, table)
    din = _held_out_auc("din_last50", features, table)
    assert muse > 0.9, muse
    assert din < muse - 0.15, (din, muse)
