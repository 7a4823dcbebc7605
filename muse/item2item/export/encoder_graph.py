"""The item encoder as a standalone module with one tensor argument per ItemBatch field, and its
ONNX export (dynamo exporter, opset 18, dynamic batch B and prompt length T).

Works for every encoder behind ``forward(ItemBatch)``: NoteLLM-2 and its ablations (Hugging
Face Llama / Qwen2 backbones, the Q-Former connector, the visual-token splice) and the
baselines. The graph returns the multimodal embedding only: that is what the index holds.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from muse.export.onnx_graph_export import export_graph
from muse.item2item.batch import ItemBatch
from muse.item2item.export.encoder_bundle_layout import GRAPH_INPUTS, GRAPH_OUTPUT
from muse.item2item.models.item_encoder import ItemEncoder

OPSET = 18
# Prompt-token inputs: their second axis is the prompt length T.
_TOKEN_AXIS_INPUTS = ("token_ids", "attention_mask")



class EncoderGraph(nn.Module):
    """``encoder(ItemBatch(...)).multimodal`` over plain tensors (shapes as in ItemBatch)."""

    def __init__(self, encoder: ItemEncoder) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(
        self,
        token_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        image_placeholder_index: torch.Tensor,
        image_compression_index: torch.Tensor,
        last_index: torch.Tensor,
        images: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """ItemBatch fields → multimodal (B, D) unit rows."""
        batch = ItemBatch(
            token_ids,
            attention_mask,
            image_placeholder_index,
            image_compression_index,
            last_index,
            images,
        )
        multimodal: torch.Tensor = self.encoder(batch).multimodal
        return multimodal


def export_encoder_onnx(encoder: ItemEncoder, example: ItemBatch, path: str | Path) -> Path:
    """Export ``encoder`` (in eval mode) to ONNX at ``path``; weights go to ``<path>.data``.

    ``example`` must hold at least 2 items of different prompt lengths, or the exporter may
    freeze the batch or the length axis, and its images (the graph runs the frozen vision
    encoder itself, never precomputed features). Returns the path.
    """
    if example.vision_patches is not None:
        raise ValueError("export from images, not precomputed vision features")
    lengths = example.attention_mask.sum(dim=1)
    if example.token_ids.shape[0] < 2 or int(lengths.min()) == int(lengths.max()):
        raise ValueError(
            "export with an example of at least 2 items of different prompt lengths, or an axis "
            "may freeze"
        )
    path = Path(path)
    batch = torch.export.Dim("batch")
    tokens = torch.export.Dim("tokens")
    with_images = example.images is not None
    names = list(GRAPH_INPUTS if with_images else GRAPH_INPUTS[:-1])
    arguments = tuple(getattr(example, name) for name in names)
    dynamic_shapes = {
        name: {0: batch, 1: tokens} if name in _TOKEN_AXIS_INPUTS else {0: batch} for name in names
    }
    return export_graph(
        EncoderGraph(encoder),
        arguments,
        path,
        names,
        [GRAPH_OUTPUT],
        dynamic_shapes,
        opset_version=OPSET,
    )
