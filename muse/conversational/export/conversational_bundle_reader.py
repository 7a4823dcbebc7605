"""Load a conversational bundle into its models (torch), for the server and ``muse conv chat``.

Checksums are verified first; each model is rebuilt from its config in the recipe and its state
loaded strictly, so a bundle from another build of the code fails loudly instead of answering
with half its weights. Imports no training code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from muse.conversational.export.conversational_bundle_layout import (
    ITEM_EMBEDDINGS_FILE,
    ITEM_IDS_FILE,
    ITEM_TITLES_FILE,
    MODELS_FILE,
    SEMANTIC_IDS_DIR,
    TOKENIZER_DIR,
    ConversationalRecipe,
    read_conversational_manifest,
)
from muse.conversational.models.generative_retriever import GenerativeRetriever
from muse.conversational.semantic_ids.semantic_id_map import SemanticIdMap
from muse.item2item.models.item_encoder import ItemEncoder, build_item_encoder
from muse.item2item.models.prompt import load_tokenizer
from muse.item2item.models.vision_encoder import VisionEncoder


class ConversationalBundle(NamedTuple):
    """A loaded bundle: its manifest and recipe, the models (eval mode, on ``device``), the
    tokenizer, the ID map and the catalogue's ids (N,), embeddings (N, D) and titles."""

    path: Path
    manifest: dict[str, Any]
    recipe: ConversationalRecipe
    retriever: GenerativeRetriever
    encoder: ItemEncoder
    vision: VisionEncoder
    tokenizer: PreTrainedTokenizerBase
    semantic_ids: SemanticIdMap
    item_ids: np.ndarray
    item_embeddings: np.ndarray
    item_titles: list[str]

    @property
    def version(self) -> str:
        return str(self.manifest["version"])


def load_conversational_bundle(
    path: str | Path, device: torch.device | None = None, verify: bool = True
) -> ConversationalBundle:
    """Read ``path`` (checksums verified unless ``verify`` is False) into its models."""
    path = Path(path)
    device = device or torch.device("cpu")
    manifest, recipe = read_conversational_manifest(path, verify=verify)
    state = torch.load(path / MODELS_FILE, map_location="cpu", weights_only=True)
    encoder = build_item_encoder(recipe.encoder)
    encoder.load_state_dict(state["encoder"])
    vision = getattr(encoder, "vision", None)
    if not isinstance(vision, VisionEncoder):
        vision = VisionEncoder(recipe.encoder.vision)
    vision.load_state_dict(state["vision"])
    retriever = GenerativeRetriever(
        recipe.retriever,
        text_vocab_size=recipe.text_vocab_size,
        image_feature_width=recipe.image_feature_width,
        id_vocab_size=recipe.id_vocab_size,
    )
    retriever.load_state_dict(state["retriever"])
    for module in (encoder, vision, retriever):
        module.to(device).eval()
    return ConversationalBundle(
        path=path,
        manifest=manifest,
        recipe=recipe,
        retriever=retriever,
        encoder=encoder,
        vision=vision,
        tokenizer=load_tokenizer(path / TOKENIZER_DIR),
        semantic_ids=SemanticIdMap.load(path / SEMANTIC_IDS_DIR),
        item_ids=np.load(path / ITEM_IDS_FILE),
        item_embeddings=np.load(path / ITEM_EMBEDDINGS_FILE),
        item_titles=list(json.loads((path / ITEM_TITLES_FILE).read_text())),
    )
