"""The torch side of the item-to-item data: catalogue rows → the encoder's :class:`ItemBatch`.

Each image is decoded, converted to RGB and resized to the vision encoder's ``image_size`` once,
the first time its item is asked for, and kept as uint8 (3 × S × S bytes per item), so later
batches only stack and normalise. Text goes through the model's :class:`ItemPrompt`.
"""

from __future__ import annotations

import collections
import re
import threading
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

from features.item_catalogue import ItemCatalogue
from muse.item2item.batch import ItemBatch, item_batch_to
from muse.item2item.models.backbone_config import BackboneKind
from muse.item2item.models.item_encoder_config import ItemEncoderConfig, ItemEncoderKind
from muse.item2item.models.packaged_llm import converted_dir
from muse.item2item.models.prompt import ItemPrompt, ItemText, load_tokenizer
from muse.item2item.models.sentence_encoder import sentence_encoder_path
from muse.item2item.models.vision_encoder import VisionEncoder
from muse.item2item.training.train_config import ItemTrainConfig

PAD_TOKEN = "[PAD]"
UNKNOWN_TOKEN = "[UNK]"
__all__ = ["ItemInputs", "ItemPairBatch", "item_batch_to", "word_tokenizer"]
_WORD = re.compile(r"\w+|[^\w\s]")  # what the word tokenizer's pre-tokenizer splits off


class ItemPairBatch(NamedTuple):
    """N co-engaged pairs: side_a and side_b are ItemBatches of N items each (row i of both is
    pair i); weights (N,) float32 are the pairs' weights."""

    side_a: ItemBatch
    side_b: ItemBatch
    weights: torch.Tensor


def word_tokenizer(
    texts: Iterable[str], vocab_size: int, reserved: Iterable[str] = ()
) -> PreTrainedTokenizerFast:
    """A word-level tokenizer: ``reserved`` words first, then the words of ``texts`` by falling
    frequency (ties alphabetical), ``vocab_size`` ids in all with [PAD] = 0 and [UNK] = 1."""
    if vocab_size < 3:
        raise ValueError(f"a word tokenizer needs vocab_size ≥ 3, got {vocab_size}")
    counts: collections.Counter[str] = collections.Counter()
    for text in texts:
        counts.update(_WORD.findall(text.lower()))
    words: list[str] = []
    for text in reserved:
        words += [word for word in _WORD.findall(text.lower()) if word not in words]
    words += [word for word, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    vocab = {PAD_TOKEN: 0, UNKNOWN_TOKEN: 1}
    for word in words:
        if len(vocab) >= vocab_size:
            break
        vocab.setdefault(word, len(vocab))
    model = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNKNOWN_TOKEN))
    model.normalizer = normalizers.Lowercase()
    model.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Whitespace(), pre_tokenizers.Punctuation()]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=model, pad_token=PAD_TOKEN, unk_token=UNKNOWN_TOKEN
    )


def build_tokenizer(config: ItemTrainConfig, catalogue: ItemCatalogue) -> PreTrainedTokenizerBase:
    """The prompt's tokenizer: the sentence encoder's own, one loaded from disk, or the word
    tokenizer over ``catalogue``'s text."""
    if config.model.kind is ItemEncoderKind.SENTENCE_ENCODER:
        return load_tokenizer(sentence_encoder_path(config.model.sentence))
    path = config.tokenizer_path
    backbone = config.model.backbone
    if path is not None:
        if backbone.kind is BackboneKind.SMOLLM2 and path == backbone.model_dir:
            converted_dir(backbone)  # the tokenizer is saved with the model's converted copy
        return load_tokenizer(path)
    prompt = config.model.prompt
    reserved = (
        prompt.image_prefix,
        prompt.image_instruction,
        prompt.text_prefix,
        prompt.text_instruction,
        prompt.compression_token,
    )
    texts = [
        " ".join((title, " ".join(topics), content))
        for title, topics, content in zip(
            catalogue.titles, catalogue.topics, catalogue.contents, strict=True
        )
    ]
    return word_tokenizer(texts, config.model.backbone.vocab_size, reserved)


def build_prompt(config: ItemTrainConfig, catalogue: ItemCatalogue) -> ItemPrompt:
    """The prompt of ``config``'s encoder, with its tokenizer (see :func:`build_tokenizer`)."""
    tokenizer = build_tokenizer(config, catalogue)
    return ItemPrompt(config.model.prompt, tokenizer, config.model.sentence.max_tokens)


class ItemInputs:
    """Builds ItemBatches of catalogue rows: prompts plus cached, normalised images.

    Safe to call from the prefetch thread and the main thread at once.
    """

    def __init__(
        self,
        catalogue: ItemCatalogue,
        prompt: ItemPrompt,
        model: ItemEncoderConfig,
        image_mean: tuple[float, float, float],
        image_std: tuple[float, float, float],
    ) -> None:
        self.catalogue = catalogue
        self.prompt = prompt
        self.sees_images = model.sees_images
        self.image_size = model.vision.image_size
        self.mean = torch.tensor(image_mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(image_std, dtype=torch.float32).view(1, 3, 1, 1)
        size = self.image_size if self.sees_images else 0
        self._pixels = torch.zeros((len(catalogue), 3, size, size), dtype=torch.uint8)
        self._decoded = np.zeros(len(catalogue), dtype=bool)
        self._lock = threading.Lock()
        self._feature_lock = threading.Lock()
        self._vision: VisionEncoder | None = None
        self._patches = torch.zeros(0)
        self._pooled = torch.zeros(0)
        self._featured = np.zeros(len(catalogue), dtype=bool)
        self._feature_batch = 256

    def cache_vision_features(self, vision: VisionEncoder, batch_size: int = 256) -> None:
        """From now on, batches carry ``vision``'s features, computed once per item.

        Exact, because the vision encoder is frozen and always in eval mode; costs
        M · (P + 1) · C · 4 bytes for M items. ``vision`` must be the model's own module (random
        vision weights are part of the model) and keep its weights.
        """
        self._vision = vision
        self._feature_batch = batch_size
        self._patches = torch.zeros(0)  # (M, P, C), allocated at the first features
        self._pooled = torch.zeros(0)
        self._featured = np.zeros(len(self.catalogue), dtype=bool)

    def texts(self, rows: np.ndarray) -> list[ItemText]:
        catalogue = self.catalogue
        return [
            ItemText(catalogue.titles[row], catalogue.topics[row], catalogue.contents[row])
            for row in rows.tolist()
        ]

    def images(self, rows: np.ndarray) -> torch.Tensor:
        """(M, 3, S, S) float32 images of catalogue ``rows`` (M,), resized and normalised."""
        self._decode(rows)
        pixels = self._pixels[torch.from_numpy(np.asarray(rows, dtype=np.int64))]
        return (pixels.to(torch.float32) / 255.0 - self.mean) / self.std

    def _decode(self, rows: np.ndarray) -> None:
        with self._lock:
            for row in np.unique(rows[~self._decoded[rows]]).tolist():
                image = self.catalogue.image(row)
                if image.size != (self.image_size, self.image_size):
                    image = image.resize(
                        (self.image_size, self.image_size), Image.Resampling.BILINEAR
                    )
                array = np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)
                self._pixels[row] = torch.from_numpy(np.ascontiguousarray(array))
                self._decoded[row] = True

    def _features(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(M, P, C) patches and (M, C) pooled of catalogue ``rows`` from the feature cache."""
        vision = self._vision
        assert vision is not None
        missing = np.unique(rows[~self._featured[rows]])
        device = next(vision.parameters()).device
        for start in range(0, missing.size, self._feature_batch):
            chunk = missing[start : start + self._feature_batch]
            features = vision(self.images(chunk).to(device))
            if self._patches.dim() == 1:  # P and C as the network gives them
                size = len(self.catalogue)
                self._patches = torch.zeros((size, *features.patches.shape[1:]))
                self._pooled = torch.zeros((size, features.pooled.shape[1]))
            index = torch.from_numpy(chunk)
            self._patches[index] = features.patches.float().cpu()
            self._pooled[index] = features.pooled.float().cpu()
            self._featured[chunk] = True
        index = torch.from_numpy(rows)
        return self._patches[index], self._pooled[index]

    def vision_features(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(M, P, C) patch features and (M, C) pooled of catalogue ``rows`` (M,) from the feature
        cache (see :meth:`cache_vision_features`, which must have been called)."""
        if self._vision is None:
            raise ValueError("vision_features needs cache_vision_features first")
        with self._feature_lock:
            return self._features(np.asarray(rows, dtype=np.int64))

    def items(self, rows: np.ndarray) -> ItemBatch:
        """The ItemBatch of catalogue ``rows`` (M,) int64."""
        rows = np.asarray(rows, dtype=np.int64)
        images = self.images(rows) if self.sees_images else None
        batch = self.prompt.encode(self.texts(rows), images)
        if self._vision is None or not self.sees_images:
            return batch
        with self._feature_lock:
            patches, pooled = self._features(rows)
        return batch._replace(images=None, vision_patches=patches, vision_pooled=pooled)

    def pairs(self, rows_a: np.ndarray, rows_b: np.ndarray, weights: np.ndarray) -> ItemPairBatch:
        """The ItemPairBatch of N pairs: catalogue rows (N,) of each side and weights (N,)."""
        return ItemPairBatch(
            side_a=self.items(rows_a),
            side_b=self.items(rows_b),
            weights=torch.as_tensor(np.asarray(weights), dtype=torch.float32),
        )
