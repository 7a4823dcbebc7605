"""The item prompt's layout, torch-free: which token ids go where, for training and for serving.

:class:`~muse.item2item.models.prompt.ItemPrompt` (training, a Hugging Face tokenizer) and the
served encoder bundle's inputs (:mod:`muse.item2item.export.new_item_inputs`, the same tokenizer
saved as ``tokenizer.json``) both build their rows here, so a new item's prompt at serving time
is the one the encoder was trained on. ``ids_of`` tokenises one piece without special tokens;
each piece is tokenised on its own and concatenated, so positions are exact whatever the
tokenizer merges. Imports no torch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from muse.item2item.models.prompt_config import PromptConfig, PromptKind


@dataclass(frozen=True)
class ItemText:
    """The text fields of one item, before truncation."""

    title: str
    topics: tuple[str, ...]
    content: str


class PromptRow(NamedTuple):
    """One item's prompt: ids, and the placeholder / image compression positions (-1 if absent)."""

    ids: list[int]
    placeholder: int
    compression: int


class PromptArrays(NamedTuple):
    """A right-padded batch of B prompts of at most T tokens (numpy twin of ItemBatch's text part).

    token_ids (B, T) int64; attention_mask (B, T) bool; image_placeholder_index,
    image_compression_index, last_index (B,) int64 (-1 where the prompt has no such position).
    """

    token_ids: np.ndarray
    attention_mask: np.ndarray
    image_placeholder_index: np.ndarray
    image_compression_index: np.ndarray
    last_index: np.ndarray


def item_text(config: PromptConfig, item: ItemText) -> str:
    """The text part's fields, truncated as NoteLLM-2 does."""
    topics = " ".join(item.topics[: config.max_topics])
    fields = (
        item.title[: config.max_title_chars],
        topics,
        item.content[: config.max_content_chars],
    )
    return " ".join(field for field in fields if field)


def prompt_row(
    config: PromptConfig,
    item: ItemText,
    ids_of: Callable[[str], list[int]],
    placeholder_id: int,
    compression_id: int,
) -> PromptRow:
    """The prompt of one item: mICL ``<image prefix> <placeholder> <image instruction>
    <compression>`` then ``<text prefix> text <text instruction> <compression>``; ``single``
    drops the image part's instruction and compression; ``text_only`` drops the image part."""
    ids: list[int] = []
    placeholder = compression = -1
    if config.kind is PromptKind.MICL or config.kind is PromptKind.SINGLE:
        ids += ids_of(config.image_prefix)
        placeholder = len(ids)
        ids.append(placeholder_id)
    if config.kind is PromptKind.MICL:
        ids += ids_of(config.image_instruction)
        compression = len(ids)
        ids.append(compression_id)
    ids += ids_of(f"{config.text_prefix} {item_text(config, item)}")
    ids += ids_of(config.text_instruction)
    ids.append(compression_id)
    return PromptRow(ids, placeholder, compression)


def padded(rows: Sequence[PromptRow], pad_id: int) -> PromptArrays:
    """Right-pad ``rows`` (at least one) to the longest into :class:`PromptArrays`."""
    width = max(len(row.ids) for row in rows)
    token_ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=bool)
    for index, row in enumerate(rows):
        token_ids[index, : len(row.ids)] = row.ids
        mask[index, : len(row.ids)] = True
    return PromptArrays(
        token_ids=token_ids,
        attention_mask=mask,
        image_placeholder_index=np.array([row.placeholder for row in rows], dtype=np.int64),
        image_compression_index=np.array([row.compression for row in rows], dtype=np.int64),
        last_index=np.array([len(row.ids) - 1 for row in rows], dtype=np.int64),
    )
