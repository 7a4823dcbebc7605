"""``score`` as standalone modules with one tensor argument per input field, and their ONNX
exports (dynamo exporter, dynamic axes): the row-wise graph over ``ScoringInputs`` and the request
graph over ``RequestScoringInputs`` (per-user work once per request)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from muse.export.onnx_graph_export import export_graph
from muse.ranking.models.ranking_model import RankingModel
from muse.ranking.models.request_scoring import RequestScoringInputs
from muse.ranking.models.scoring_inputs import ScoringInputs

SCORING_INPUT_NAMES = list(ScoringInputs._fields)
SCORING_OUTPUT_NAMES = ["logits"]
SELECTED_FIELDS = ("selected_items", "selected_categories", "selected_cosines", "selected_mask")
RECENT_FIELDS = ("recent_items", "recent_categories", "recent_cosines", "recent_mask")
REQUEST_INPUT_NAMES = list(RequestScoringInputs._fields)
# Each request-graph input's axes, by name: R requests, C candidates, U behaviours, K, N.
REQUEST_AXES = {
    "user_profile": ("requests", None),
    "recent_items": ("requests", "recent"),
    "recent_categories": ("requests", "recent"),
    "recent_mask": ("requests", "recent"),
    "request": ("candidates",),
    "target_item": ("candidates",),
    "target_category": ("candidates",),
    "target_attributes": ("candidates", None),
    "behaviour_items": ("behaviours",),
    "behaviour_categories": ("behaviours",),
    "selected_index": ("candidates", "top_k"),
    "selected_cosines": ("candidates", "top_k"),
    "selected_mask": ("candidates", "top_k"),
    "recent_cosines": ("candidates", "recent"),
}


class ScoringGraph(nn.Module):
    """The model's second stage over plain embedding lookups: what serving runs after ``select``."""

    def __init__(self, model: RankingModel) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        user_profile: torch.Tensor,
        target_item: torch.Tensor,
        target_category: torch.Tensor,
        target_attributes: torch.Tensor,
        selected_items: torch.Tensor,
        selected_categories: torch.Tensor,
        selected_cosines: torch.Tensor,
        selected_mask: torch.Tensor,
        recent_items: torch.Tensor,
        recent_categories: torch.Tensor,
        recent_cosines: torch.Tensor,
        recent_mask: torch.Tensor,
    ) -> torch.Tensor:
        """Shapes as in :class:`ScoringInputs` → logits (B,)."""
        inputs = ScoringInputs(
            user_profile,
            target_item,
            target_category,
            target_attributes,
            selected_items,
            selected_categories,
            selected_cosines,
            selected_mask,
            recent_items,
            recent_categories,
            recent_cosines,
            recent_mask,
        )
        return self.model.score_plain(inputs)


def export_scoring_onnx(model: RankingModel, example: ScoringInputs, path: str | Path) -> Path:
    """Export ``model``'s second stage (in eval mode) to ONNX at ``path``; returns the path.

    The example batch must have B ≥ 2, and K ≥ 2 and N ≥ 2 where those axes are used, or the
    exporter may freeze an axis. Weights go to ``<path>.data`` beside the graph.
    """
    if example.target_item.shape[0] < 2:
        raise ValueError(
            "export with an example batch of at least 2 rows, or the batch axis may freeze"
        )
    path = Path(path)
    batch = torch.export.Dim("batch")
    top_k = torch.export.Dim("top_k")
    recent = torch.export.Dim("recent")
    dynamic_shapes: dict[str, dict[int, torch.export.Dim]] = {}
    for name, tensor in zip(SCORING_INPUT_NAMES, example, strict=True):
        axes = {0: batch}
        if name in SELECTED_FIELDS and tensor.shape[1] >= 2:
            axes[1] = top_k
        if name in RECENT_FIELDS and tensor.shape[1] >= 2:
            axes[1] = recent
        dynamic_shapes[name] = axes
    return export_graph(
        ScoringGraph(model),
        tuple(example),
        path,
        SCORING_INPUT_NAMES,
        SCORING_OUTPUT_NAMES,
        dynamic_shapes,
    )


class RequestScoringGraph(nn.Module):
    """``score_requests`` over plain tensors: the serving graph that shares per-user work."""

    def __init__(self, model: RankingModel) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        user_profile: torch.Tensor,
        recent_items: torch.Tensor,
        recent_categories: torch.Tensor,
        recent_mask: torch.Tensor,
        request: torch.Tensor,
        target_item: torch.Tensor,
        target_category: torch.Tensor,
        target_attributes: torch.Tensor,
        behaviour_items: torch.Tensor,
        behaviour_categories: torch.Tensor,
        selected_index: torch.Tensor,
        selected_cosines: torch.Tensor,
        selected_mask: torch.Tensor,
        recent_cosines: torch.Tensor,
    ) -> torch.Tensor:
        """Shapes as in :class:`RequestScoringInputs` → logits (C,)."""
        return self.model.score_requests(
            RequestScoringInputs(
                user_profile,
                recent_items,
                recent_categories,
                recent_mask,
                request,
                target_item,
                target_category,
                target_attributes,
                behaviour_items,
                behaviour_categories,
                selected_index,
                selected_cosines,
                selected_mask,
                recent_cosines,
            )
        )


def export_request_scoring_onnx(
    model: RankingModel, example: RequestScoringInputs, path: str | Path
) -> Path:
    """Export ``model``'s request graph (in eval mode) to ONNX at ``path``; returns the path.

    The example must have at least 2 of each dynamic axis (requests, candidates, and behaviours,
    K and N where used), or the exporter may freeze it. Weights go to ``<path>.data`` beside the graph.
    """
    sizes: dict[str, int] = {}
    for name, tensor in zip(REQUEST_INPUT_NAMES, example, strict=True):
        for axis, label in enumerate(REQUEST_AXES[name]):
            if label is not None:
                sizes[label] = tensor.shape[axis]
    # A model without a search sends K = 0 and no behaviours, always: those axes stay static.
    needed = (
        ("requests", "candidates", "behaviours")
        if sizes.get("top_k", 0)
        else ("requests", "candidates")
    )
    for label, size in sizes.items():
        if size < 2 and label in needed:
            raise ValueError(
                f"export with at least 2 {label} in the example, or the axis may freeze"
            )
    dims = {label: torch.export.Dim(label) for label, size in sizes.items() if size >= 2}
    dynamic_shapes = {
        name: {
            axis: dims[label]
            for axis, label in enumerate(REQUEST_AXES[name])
            if label is not None and label in dims
        }
        for name in REQUEST_INPUT_NAMES
    }
    return export_graph(
        RequestScoringGraph(model),
        tuple(example),
        Path(path),
        REQUEST_INPUT_NAMES,
        SCORING_OUTPUT_NAMES,
        dynamic_shapes,
    )
