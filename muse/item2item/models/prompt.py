"""The item prompt (mICL): token ids for a batch of items, with the positions the encoder reads.

mICL puts the note in twice: ``<image prefix> <placeholder> <image instruction> <compression>``
then ``<text prefix> title topics content <text instruction> <compression>``. Under causal
attention the image part's compression position sees only the image, so its hidden state is the
visual embedding; the last position sees both and gives the multimodal one. Each piece is
tokenised on its own and concatenated, so positions are exact whatever the tokenizer merges.
The placeholder's id is never looked up (the Q visual tokens replace its embedding).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from muse.item2item.batch import ItemBatch
from muse.item2item.models.prompt_config import PromptConfig, PromptKind
from muse.item2item.models.prompt_layout import (
    ItemText,
    PromptRow,
    item_text,
    padded,
    prompt_row,
)

__all__ = ["ItemPrompt", "ItemText", "load_tokenizer"]


def load_tokenizer(path: Path) -> PreTrainedTokenizerBase:
    """The tokenizer saved in a model folder on disk (never downloaded)."""
    tokenizer: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(path, local_files_only=True)
    return tokenizer


class ItemPrompt:
    """Builds :class:`ItemBatch` token ids from item texts (B items, T longest prompt)."""

    def __init__(
        self,
        config: PromptConfig,
        tokenizer: PreTrainedTokenizerBase,
        max_plain_tokens: int = 128,
    ) -> None:
        self.config = config
        self.tokenizer = tokenizer
        self.max_plain_tokens = max_plain_tokens  # kind "plain": the sentence encoder's limit
        compression = self._ids(config.compression_token)
        if len(compression) != 1 and config.kind is not PromptKind.PLAIN:
            raise ValueError(
                f"prompt.compression_token {config.compression_token!r} is {len(compression)} "
                "tokens for this tokenizer; it must be exactly one"
            )
        self.compression_id = compression[0]
        pad = (
            tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        )
        if pad is None:
            raise ValueError("the tokenizer has neither a pad nor an end-of-sequence token")
        self.pad_id = int(pad)
        self.placeholder_id = self.pad_id  # its embedding is replaced, so any id will do

    def _ids(self, text: str) -> list[int]:
        ids: list[int] = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return ids

    def _plain_row(self, item: ItemText) -> PromptRow:
        # Special tokens included ([CLS] … [SEP]): sentence encoders were trained with them.
        ids: list[int] = self.tokenizer(
            self.item_text(item), truncation=True, max_length=self.max_plain_tokens
        )["input_ids"]
        return PromptRow(ids or [self.pad_id], -1, -1)

    def item_text(self, item: ItemText) -> str:
        """The text part's fields, truncated as NoteLLM-2 does."""
        return item_text(self.config, item)

    def encode(self, items: Sequence[ItemText], images: torch.Tensor | None) -> ItemBatch:
        """Items (and their images (B, 3, S, S), or None) → a right-padded batch.

        A prompt that shows an image needs ``images``; others carry them unshown (vision-only).
        """
        if images is None and self.config.kind.shows_image:
            raise ValueError(f"a {self.config.kind.value} prompt shows an image: pass images")
        if images is not None and self.config.kind is PromptKind.TEXT_ONLY:
            raise ValueError("a text_only prompt takes no images")
        if self.config.kind is PromptKind.PLAIN:
            rows = [self._plain_row(item) for item in items]
        else:
            rows = [
                prompt_row(self.config, item, self._ids, self.placeholder_id, self.compression_id)
                for item in items
            ]
        arrays = padded(rows, self.pad_id)
        return ItemBatch(
            token_ids=torch.from_numpy(arrays.token_ids),
            attention_mask=torch.from_numpy(arrays.attention_mask),
            image_placeholder_index=torch.from_numpy(arrays.image_placeholder_index),
            image_compression_index=torch.from_numpy(arrays.image_compression_index),
            last_index=torch.from_numpy(arrays.last_index),
            images=images,
        )
