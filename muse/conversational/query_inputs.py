"""Rewritten queries → what the retriever and the encoder read, the same in training and serving.

A query's picture is a catalogue item's (``image_item_id``: its frozen vision features, which the
caller caches) or uploaded bytes (decoded, resized and normalised as catalogue images are, then
run through the same frozen vision encoder). A query without a picture gets all-zero vision
features: the retriever masks its image tokens out, and the encoder's Q-Former sees no pattern.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from transformers import PreTrainedTokenizerBase

from muse.conversational.models.generative_retriever import QueryBatch
from muse.conversational.models.rewritten_query import RewrittenQuery
from muse.item2item.batch import ItemBatch
from muse.item2item.models.prompt import ItemPrompt, ItemText
from muse.item2item.models.vision_encoder import VisionEncoder

# catalogue rows (M,) → (M, P, C) patch features and (M, C) pooled: the caller's feature cache.
RowFeatures = Callable[[np.ndarray], tuple[torch.Tensor, torch.Tensor]]
IMAGE_FORMATS = ("PNG", "JPEG")
MAX_IMAGE_PIXELS = 40_000_000  # a decompression bomb is refused before it is decoded


class PictureError(ValueError):
    """Uploaded picture bytes that do not decode as PNG or JPEG."""


class QueryFeatures(NamedTuple):
    """patches (B, P, C), pooled (B, C) float32 vision features; has_picture (B,) bool."""

    patches: torch.Tensor
    pooled: torch.Tensor
    has_picture: torch.Tensor


class QueryInputs:
    """Builds the retriever's QueryBatch and the encoder's ItemBatch of rewritten queries."""

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        prompt: ItemPrompt,
        vision: VisionEncoder,
        row_features: RowFeatures,
        row_of_item: Callable[[int], int],
        image_mean: tuple[float, float, float],
        image_std: tuple[float, float, float],
    ) -> None:
        self.tokenizer = tokenizer
        self.prompt = prompt
        self.vision = vision
        self.row_features = row_features
        self.row_of_item = row_of_item
        self.mean = torch.tensor(image_mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(image_std, dtype=torch.float32).view(1, 3, 1, 1)
        pad = tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else 0)

    def features(self, queries: Sequence[RewrittenQuery]) -> QueryFeatures:
        """The vision features of each query's picture (zeros where it has none)."""
        count = len(queries)
        rows = np.array(
            [
                self.row_of_item(q.image_item_id) if q.image_item_id is not None else -1
                for q in queries
            ],
            dtype=np.int64,
        )
        uploads = [i for i, q in enumerate(queries) if q.image is not None and rows[i] < 0]
        from_rows = np.flatnonzero(rows >= 0)
        parts: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        if from_rows.size:
            patches, pooled = self.row_features(rows[from_rows])
            for j, i in enumerate(from_rows.tolist()):
                parts[i] = (patches[j], pooled[j])
        if uploads:
            images = torch.stack([self.pixels(queries[i].image or b"") for i in uploads])
            device = next(self.vision.parameters()).device
            with torch.no_grad():
                computed = self.vision(((images - self.mean) / self.std).to(device))
            for j, i in enumerate(uploads):
                parts[i] = (computed.patches[j].float().cpu(), computed.pooled[j].float().cpu())
        if not parts:
            width = self.vision.output_width
            return QueryFeatures(
                torch.zeros((count, 1, width)),
                torch.zeros((count, width)),
                torch.zeros(count, dtype=torch.bool),
            )
        some_patches, some_pooled = next(iter(parts.values()))
        patches_out = torch.zeros((count, *some_patches.shape))
        pooled_out = torch.zeros((count, *some_pooled.shape))
        for i, (patch, pool) in parts.items():
            patches_out[i] = patch
            pooled_out[i] = pool
        has = torch.zeros(count, dtype=torch.bool)
        has[list(parts)] = True
        return QueryFeatures(patches_out, pooled_out, has)

    def pixels(self, data: bytes) -> torch.Tensor:
        """(3, S, S) float32 RGB in [0, 1] of PNG or JPEG ``data``, resized to the encoder's S."""
        size = self.vision.config.image_size
        try:
            with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as image:
                width, height = image.size
                if width * height > MAX_IMAGE_PIXELS:
                    raise PictureError(f"{width}×{height} pixels is more than {MAX_IMAGE_PIXELS:,}")
                rgb = image.convert("RGB")
        except PictureError:
            raise
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
            raise PictureError(
                f"{len(data):,} bytes that are not a PNG or JPEG image ({error})"
            ) from None
        if rgb.size != (size, size):
            rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
        array = np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1))
        return torch.from_numpy(array).to(torch.float32) / 255.0

    def retriever_batch(
        self, queries: Sequence[RewrittenQuery], features: QueryFeatures
    ) -> QueryBatch:
        """The retriever's input: the query's tokens (the retriever keeps the latest of a long
        one) and its picture's pooled features."""
        encoded = [
            self.tokenizer(q.text, add_special_tokens=False)["input_ids"] or [self.pad_id]
            for q in queries
        ]
        width = max(len(ids) for ids in encoded)
        tokens = torch.full((len(encoded), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(encoded), width), dtype=torch.bool)
        for row, ids in enumerate(encoded):
            tokens[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            mask[row, : len(ids)] = True
        return QueryBatch(
            text_tokens=tokens,
            text_mask=mask,
            image_features=features.pooled,
            has_image=features.has_picture,
        )

    def encoder_batch(
        self, queries: Sequence[RewrittenQuery], features: QueryFeatures
    ) -> ItemBatch:
        """The encoder's input: the query as an item whose content is the query text and whose
        image is its picture (vision features given, so the frozen encoder is not rerun)."""
        # The query is the content field, cut to its latest characters: a dialogue's newest
        # words matter most (an item's title field would keep only its first few).
        limit = self.prompt.config.max_content_chars
        texts = [ItemText("", (), q.text[-limit:]) for q in queries]
        placeholder = torch.zeros((len(queries), 3, 1, 1))  # shown images are given as features
        batch = self.prompt.encode(
            texts, placeholder if self.prompt.config.kind.shows_image else None
        )
        return batch._replace(
            images=None, vision_patches=features.patches, vision_pooled=features.pooled
        )
