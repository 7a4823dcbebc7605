"""The second stage's inputs for whole requests: what one user sends once, what each candidate adds.

A serving request scores C candidates for one user. ``ScoringInputs`` repeats the user's profile
and recent window on every candidate row and lists each candidate's searched behaviours in full,
so the ESU projects the same recent behaviours C times and the same history items up to C times.
``RequestScoringInputs`` holds the per-user parts once per request and the searched behaviours
once per distinct (item, category) pair; ``RankingModel.score_requests`` reads it.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from muse.ranking.models.scoring_inputs import ScoringInputs


class RequestScoringInputs(NamedTuple):
    """R requests (users), C candidates in all, U distinct searched behaviours.

    user_profile: (R, P) int64 profile feature indices.
    recent_items, recent_categories: (R, N) int64, oldest first, right-aligned, 0 padding.
    recent_mask: (R, N) bool.
    request: (C,) int64, the request (row of the per-user tensors) of each candidate.
    target_item, target_category: (C,) int64; target_attributes: (C, A) int64.
    behaviour_items, behaviour_categories: (U,) int64, the distinct searched behaviours.
    selected_index: (C, K) int64 row of the behaviour tensors of each searched behaviour, highest
        first (0 where masked); selected_cosines: (C, K) float32; selected_mask: (C, K) bool.
    recent_cosines: (C, N) float32 MM cosine of each recent behaviour to the candidate.
    """

    user_profile: torch.Tensor
    recent_items: torch.Tensor
    recent_categories: torch.Tensor
    recent_mask: torch.Tensor
    request: torch.Tensor
    target_item: torch.Tensor
    target_category: torch.Tensor
    target_attributes: torch.Tensor
    behaviour_items: torch.Tensor
    behaviour_categories: torch.Tensor
    selected_index: torch.Tensor
    selected_cosines: torch.Tensor
    selected_mask: torch.Tensor
    recent_cosines: torch.Tensor


def distinct_behaviours(
    items: torch.Tensor, categories: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(behaviour_items (U,), behaviour_categories (U,), index (C, K)) of searched behaviours.

    items, categories: (C, K) int64 (≥ 0); mask: (C, K) bool. Masked slots are the pair (0, 0),
    a padding row that is gathered but never pooled; U ≥ 1 whenever C·K ≥ 1.
    """
    # One int64 key per (item, category) pair, decoded after the sort.
    stride = int(categories.max()) + 1 if categories.numel() else 1
    keys = torch.where(mask, items * stride + categories, torch.zeros((), dtype=torch.int64))
    unique, index = torch.unique(keys, return_inverse=True)
    return unique // stride, unique % stride, index.reshape(items.shape)


def request_inputs_from_scoring(
    inputs: ScoringInputs, request: torch.Tensor
) -> RequestScoringInputs:
    """The request form of row-wise ``inputs`` whose rows belong to requests ``request`` (C,).

    Each request's per-user parts are read from its first row (all its rows carry the same).
    """
    requests = int(request.max()) + 1 if request.numel() else 0
    first = torch.full((requests,), request.numel(), dtype=torch.int64)
    first.scatter_reduce_(
        0, request, torch.arange(request.numel(), dtype=torch.int64), reduce="amin"
    )
    items, categories, index = distinct_behaviours(
        inputs.selected_items, inputs.selected_categories, inputs.selected_mask
    )
    return RequestScoringInputs(
        user_profile=inputs.user_profile[first],
        recent_items=inputs.recent_items[first],
        recent_categories=inputs.recent_categories[first],
        recent_mask=inputs.recent_mask[first],
        request=request,
        target_item=inputs.target_item,
        target_category=inputs.target_category,
        target_attributes=inputs.target_attributes,
        behaviour_items=items,
        behaviour_categories=categories,
        selected_index=index,
        selected_cosines=inputs.selected_cosines,
        selected_mask=inputs.selected_mask,
        recent_cosines=inputs.recent_cosines,
    )
