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
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from muse.item2item.batch import ItemBatch
from muse.item2item.models.prompt_config import PromptConfig, PromptKind


@dataclass(frozen=True)
class ItemText:
    """The text fields of one item, before truncation."""

    title: str
    topics: tuple[str, ...]
    content: str


def load_tokenizer(path: Path) -> PreTrainedTokenizerBase:
    """The tokenizer saved in a model folder on disk (never downloaded)."""
    tokenizer: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(path, local_files_only=True)
    return tokenizer


class ItemPrompt:
    """Builds :class:`ItemBatch` token ids from item texts (B items, T longest prompt)."""

    def __init__(self, config: PromptConfig, tokenizer: PreTrainedTokenizerBase) -> None:
        self.config = config
        self.tokenizer = tokenizer
        compression = self._ids(config.compression_token)
        if len(compression) != 1:
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

    def item_text(self, item: ItemText) -> str:
        """The text part's fields, truncated as NoteLLM-2 does."""
        config = self.config
        topics = " ".join(item.topics[: config.max_topics])
        fields = (
            item.title[: config.max_title_chars],
            topics,
            item.content[: config.max_content_chars],
        )
        return " ".join(field for field in fields if field)

    def _row(self, item: ItemText) -> tuple[list[int], int, int]:
        """(ids, placeholder index, image compression index) of one item; -1 when absent."""
        config = self.config
        ids: list[int] = []
        placeholder = compression = -1
        if config.kind is PromptKind.MICL or config.kind is PromptKind.SINGLE:
            ids += self._ids(config.image_prefix)
            placeholder = len(ids)
            ids.append(self.placeholder_id)
        if config.kind is PromptKind.MICL:
            ids += self._ids(config.image_instruction)
            compression = len(ids)
            ids.append(self.compression_id)
        ids += self._ids(f"{config.text_prefix} {self.item_text(item)}")
        ids += self._ids(config.text_instruction)
        ids.append(self.compression_id)
        return ids, placeholder, compression

    def encode(self, items: Sequence[ItemText], images: torch.Tensor | None) -> ItemBatch:
        """Items (and their images (B, 3, S, S), None for text-only) → a right-padded batch."""
        if (images is None) != (self.config.kind is PromptKind.TEXT_ONLY):
            raise ValueError(f"a {self.config.kind.value} prompt needs images iff it shows one")
        rows = [self._row(item) for item in items]
        width = max(len(ids) for ids, _, _ in rows)
        token_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.int64)
        mask = torch.zeros((len(rows), width), dtype=torch.bool)
        for row, (ids, _, _) in enumerate(rows):
            token_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.int64)
            mask[row, : len(ids)] = True
        return ItemBatch(
            token_ids=token_ids,
            attention_mask=mask,
            image_placeholder_index=torch.tensor([p for _, p, _ in rows], dtype=torch.int64),
            image_compression_index=torch.tensor([c for _, _, c in rows], dtype=torch.int64),
            last_index=torch.tensor([len(ids) - 1 for ids, _, _ in rows], dtype=torch.int64),
            images=images,
        )
