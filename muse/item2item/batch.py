"""The batch every item encoder reads: prompt token ids, their marked positions and the images."""

from __future__ import annotations

from typing import NamedTuple

import torch


class ItemBatch(NamedTuple):
    """One batch of items (B items, T prompt tokens, S image side).

    Prompts are right-padded; indices are in token space, before the image placeholder is
    widened into the Q visual tokens. An index is -1 where the prompt has no such position.

    token_ids: (B, T) int64 prompt token ids.
    attention_mask: (B, T) bool, True for real tokens.
    image_placeholder_index: (B,) int64 position of the one image placeholder token.
    image_compression_index: (B,) int64 the image part's compression position (mICL only).
    last_index: (B,) int64 the last real token (the text part's compression position).
    images: (B, 3, S, S) float32 normalised images, or None for text-only prompts (and when
        the frozen vision features below are given instead).
    vision_patches: (B, P, C) float32 the frozen vision encoder's patch features, precomputed
        (the training inputs' feature cache), or None to run the vision encoder on ``images``.
    vision_pooled: (B, C) float32 their pooled vector, given with ``vision_patches``.
    """

    token_ids: torch.Tensor
    attention_mask: torch.Tensor
    image_placeholder_index: torch.Tensor
    image_compression_index: torch.Tensor
    last_index: torch.Tensor
    images: torch.Tensor | None
    vision_patches: torch.Tensor | None = None
    vision_pooled: torch.Tensor | None = None


def item_batch_to(batch: ItemBatch, device: torch.device) -> ItemBatch:
    """``batch`` with every tensor on ``device``."""
    def to(tensor: torch.Tensor | None) -> torch.Tensor | None:
        return tensor.to(device) if tensor is not None else None

    return ItemBatch(
        token_ids=batch.token_ids.to(device),
        attention_mask=batch.attention_mask.to(device),
        image_placeholder_index=batch.image_placeholder_index.to(device),
        image_compression_index=batch.image_compression_index.to(device),
        last_index=batch.last_index.to(device),
        images=to(batch.images),
        vision_patches=to(batch.vision_patches),
        vision_pooled=to(batch.vision_pooled),
    )
