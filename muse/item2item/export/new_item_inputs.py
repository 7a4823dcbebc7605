"""A new item (text fields and image bytes) → the encoder graph's inputs, as training built them.

The prompt comes from :mod:`muse.item2item.models.prompt_layout` with the bundle's
``tokenizer.json`` (the training tokenizer, saved); the image is decoded, converted to RGB,
resized to S × S (bilinear, only when its size differs) and normalised as
:class:`~muse.item2item.training.item_inputs.ItemInputs` does. What the encoder needs and the
item lacks is a :class:`NewItemError` naming the field. Imports no torch.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, UnidentifiedImageError
from tokenizers import Tokenizer

from muse.item2item.export.encoder_bundle_layout import EncoderRecipe
from muse.item2item.models.prompt_config import PromptKind
from muse.item2item.models.prompt_layout import ItemText, PromptRow, item_text, padded, prompt_row

# A new item's image may hold at most this many pixels before it is resized (a decompression
# bomb is refused before it is decoded).
MAX_IMAGE_PIXELS = 40_000_000
IMAGE_FORMATS = ("PNG", "JPEG")


class NewItem(NamedTuple):
    """An item that need not be in the catalogue: its text fields and its image (PNG or JPEG
    bytes, empty for none). ``category`` is carried, not encoded (no encoder's prompt shows it)."""

    title: str = ""
    content: str = ""
    topics: tuple[str, ...] = ()
    category: str = ""
    image: bytes = b""


class NewItemError(ValueError):
    """A new item the encoder cannot read; ``field`` names the request field at fault."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class NewItemInputs:
    """Builds the graph's feeds for new items from a bundle's recipe and tokenizer.

    Read-only after construction, so threads may share it.
    """

    def __init__(self, recipe: EncoderRecipe, tokenizer: Tokenizer) -> None:
        self.recipe = recipe
        # The saved tokenizer may carry the padding or truncation its last call set; a prompt
        # piece is tokenised bare, and a plain prompt truncated as training did.
        tokenizer.no_padding()
        tokenizer.no_truncation()
        if recipe.prompt.kind is PromptKind.PLAIN:
            tokenizer.enable_truncation(recipe.max_plain_tokens, direction=recipe.truncation_side)
        self.tokenizer = tokenizer
        self._mean = np.asarray(recipe.image_mean, dtype=np.float32).reshape(1, 3, 1, 1)
        self._std = np.asarray(recipe.image_std, dtype=np.float32).reshape(1, 3, 1, 1)

    @classmethod
    def from_file(cls, recipe: EncoderRecipe, tokenizer_json: str | Path) -> NewItemInputs:
        return cls(recipe, Tokenizer.from_file(str(tokenizer_json)))

    def feeds(self, items: Sequence[NewItem]) -> dict[str, np.ndarray]:
        """The graph's inputs for ``items`` (at least one), keyed by input name.

        token_ids (B, T) int64, attention_mask (B, T) bool, the three index arrays (B,) int64
        and, for an encoder that reads images, images (B, 3, S, S) float32. Raises
        NewItemError naming the field an item lacks or gets wrong.
        """
        if not items:
            raise ValueError("feeds needs at least one item")
        for item in items:
            self.check(item)
        arrays = padded([self._row(item) for item in items], self.recipe.pad_id)
        feeds = dict(arrays._asdict())
        if self.recipe.reads_images:
            feeds["images"] = self.normalised(np.stack([self.pixels(item.image) for item in items]))
        return {name: feeds[name] for name in self.recipe.graph_inputs}

    def check(self, item: NewItem) -> None:
        """Raise NewItemError when the encoder needs a field ``item`` lacks."""
        recipe = self.recipe
        if recipe.reads_images and not item.image:
            raise NewItemError(
                "item.image",
                f"this encoder ({recipe.encoder_kind}, prompt {recipe.prompt.kind.value}) reads "
                "the item's image: send its PNG or JPEG bytes",
            )
        if recipe.reads_text and not recipe.reads_images and not self._text(item).strip():
            raise NewItemError(
                "item",
                f"this encoder ({recipe.encoder_kind}, prompt {recipe.prompt.kind.value}) reads "
                "only text, and item.title, item.content and item.topics are all empty",
            )

    def pixels(self, data: bytes) -> np.ndarray:
        """(3, S, S) uint8 RGB pixels of PNG or JPEG ``data``, resized to S × S."""
        size = self.recipe.image_size
        try:
            with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as image:
                width, height = image.size
                if width * height > MAX_IMAGE_PIXELS:
                    raise NewItemError(
                        "item.image",
                        f"{width}×{height} pixels is more than the {MAX_IMAGE_PIXELS:,} accepted",
                    )
                rgb = image.convert("RGB")
        except NewItemError:
            raise
        except UnidentifiedImageError:
            raise NewItemError(
                "item.image", f"{len(data):,} bytes that are not a PNG or JPEG image"
            ) from None
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
            raise NewItemError(
                "item.image",
                f"a PNG or JPEG image that does not decode ({len(data):,} bytes: {error})",
            ) from None
        if rgb.size != (size, size):
            rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
        return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1))

    def normalised(self, pixels: np.ndarray) -> np.ndarray:
        """(B, 3, S, S) uint8 → float32 ``(pixels / 255 − mean) / std``, per channel."""
        return (pixels.astype(np.float32) / np.float32(255.0) - self._mean) / self._std

    def _text(self, item: NewItem) -> str:
        return item_text(self.recipe.prompt, _item_text(item))

    def _ids(self, text: str) -> list[int]:
        ids: list[int] = self.tokenizer.encode(text, add_special_tokens=False).ids
        return ids

    def _row(self, item: NewItem) -> PromptRow:
        recipe = self.recipe
        if recipe.prompt.kind is PromptKind.PLAIN:
            # Special tokens included, truncated to the sentence encoder's limit (as ItemPrompt).
            ids: list[int] = self.tokenizer.encode(self._text(item)).ids
            return PromptRow(ids or [recipe.pad_id], -1, -1)
        return prompt_row(
            recipe.prompt, _item_text(item), self._ids, recipe.placeholder_id, recipe.compression_id
        )


def _item_text(item: NewItem) -> ItemText:
    return ItemText(item.title, tuple(topic for topic in item.topics if topic), item.content)
