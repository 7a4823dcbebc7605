"""SparseRowWiseAdagrad (sparse row gradients) against torchrec's RowWiseAdagrad (dense gradients)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchrec.optim.rowwise_adagrad import RowWiseAdagrad

from muse.training.sparse_rowwise_adagrad import (
    SparseRowWiseAdagrad,
    summed_rows,
    use_sparse_gradients,
)


def _train(
    sparse: bool, optimiser_class: type, steps: int = 4
) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    table = nn.Embedding(30, 6, sparse=sparse)
    optimiser = optimiser_class(table.parameters(), lr=0.3, eps=1e-8)
    generator = torch.Generator().manual_seed(1)
    for _ in range(steps):
        # Ids 0..19 only, with many repeats: rows 20..29 never get a gradient.
        ids = torch.randint(0, 20, (8, 5), generator=generator)
        target = torch.randn(8, 5, 6, generator=generator)
        loss = ((table(ids) - target) ** 2).sum()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return table.weight.detach().clone(), optimiser.state[table.weight]["sum"].clone()


@pytest.mark.parametrize("sparse", [True, False])
def test_matches_torchrec_rowwise_adagrad(sparse: bool) -> None:
    reference_weight, reference_sum = _train(False, RowWiseAdagrad)
    weight, row_sums = _train(sparse, SparseRowWiseAdagrad)
    torch.testing.assert_close(weight, reference_weight, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(row_sums, reference_sum, rtol=1e-5, atol=1e-7)
    torch.manual_seed(0)
    initial = nn.Embedding(30, 6).weight.detach()
    assert torch.equal(weight[20:], initial[20:])  # untouched rows stay as they were
    assert not torch.equal(weight[:20], initial[:20])
    assert torch.all(row_sums[20:] == 0) and torch.all(row_sums[:20] > 0)


def test_summed_rows_adds_duplicates() -> None:
    gradient = torch.sparse_coo_tensor(
        torch.tensor([[4, 1, 4, 4]]),
        torch.tensor([[1.0], [2.0], [3.0], [0.5]]),
        (6, 1),
        check_invariants=True,
    )
    rows, values = summed_rows(gradient)
    assert rows.tolist() == [1, 4]
    assert values.squeeze(1).tolist() == [2.0, 4.5]


def test_use_sparse_gradients_switches_only_named_tables() -> None:
    model = nn.ModuleDict({"ids": nn.Embedding(5, 2), "other": nn.Embedding(5, 2)})
    use_sparse_gradients(model, {"ids.weight"})
    assert model["ids"].sparse and not model["other"].sparse
    model["ids"](torch.tensor([1, 1, 3])).sum().backward()
    assert model["ids"].weight.grad is not None and model["ids"].weight.grad.is_sparse


def test_rejects_non_matrix_parameters() -> None:
    with pytest.raises(ValueError, match="row-wise"):
        SparseRowWiseAdagrad([nn.Parameter(torch.zeros(3))])
