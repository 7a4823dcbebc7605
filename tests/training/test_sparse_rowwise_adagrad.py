"""SparseRowWiseAdagrad (sparse row gradients) against torchrec's RowWiseAdagrad (dense gradients)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchrec.optim.rowwise_adagrad import RowWiseAdagrad

from muse.training import sparse_rowwise_adagrad
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


needs_kernel = pytest.mark.skipif(
    sparse_rowwise_adagrad.load_kernel() is None, reason="native kernel unavailable here"
)


def _train_with(step: str, steps: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(2)
    table = nn.Embedding(40, 8, sparse=True)
    optimiser = SparseRowWiseAdagrad(table.parameters(), lr=0.2, eps=1e-8)
    generator = torch.Generator().manual_seed(3)
    for _ in range(steps):
        ids = torch.randint(0, 25, (16, 7), generator=generator)  # many duplicates
        loss = ((table(ids) - torch.randn(16, 7, 8, generator=generator)) ** 2).sum()
        optimiser.zero_grad()
        loss.backward()
        getattr(optimiser, step)()
    return table.weight.detach().clone(), optimiser.state[table.weight]["sum"].clone()


@needs_kernel
def test_native_step_matches_the_torch_form() -> None:
    weight, row_sums = _train_with("step")
    plain_weight, plain_sums = _train_with("step_plain")
    torch.testing.assert_close(weight, plain_weight, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(row_sums, plain_sums, rtol=1e-5, atol=1e-7)
    assert torch.all(row_sums[25:] == 0) and torch.all(row_sums[:25] > 0)


@needs_kernel
def test_native_step_rejects_rows_outside_the_table_and_leaves_weights_alone() -> None:
    weight = nn.Parameter(torch.ones(6, 2))
    optimiser = SparseRowWiseAdagrad([weight], lr=0.5)
    weight.grad = torch.sparse_coo_tensor(
        torch.tensor([[1, 9]]), torch.ones(2, 2), (6, 2), check_invariants=False
    )
    with pytest.raises(IndexError, match="outside the table of 6 rows"):
        optimiser.step()
    assert torch.equal(weight.detach(), torch.ones(6, 2))
    assert torch.all(optimiser.state[weight]["sum"] == 0)
