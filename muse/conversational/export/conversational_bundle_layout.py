"""The conversational bundle: the files beside its manifest, and the recipe the server follows.

```
<bundle>/
  manifest.json         generic header (task "conversational"), name, version, the recipe
                        ("conversational"), the run config, the checkpoint, every file's sha256
  models.pt             state dicts of the generative retriever, the NoteLLM-2 encoder and the
                        frozen vision encoder ({"retriever", "encoder", "vision"})
  tokenizer/            the task's tokenizer (Hugging Face folder)
  semantic_ids/         the item ↔ semantic ID map (muse.conversational.semantic_ids)
  item_ids.npy          (N,) int64 catalogue item ids, in the order of the rows below
  item_embeddings.npy   (N, D) float32 the items' NoteLLM-2 embeddings (unit rows)
  item_titles.json      N titles, for answers a person reads
```

The server rebuilds each model from its config in the recipe and loads its state (the
retriever's beam search runs in torch: Hugging Face ``generate`` with the trie walk has no ONNX
export). Imports no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from muse.conversational.models.generative_retriever_config import GenerativeRetrieverConfig
from muse.conversational.models.query_rewriter_config import QueryRewriterConfig
from muse.core.config_loader import config_from_dict, config_to_dict
from muse.core.errors import DataError
from muse.core.task_kind import TaskKind
from muse.export.bundle_format import MANIFEST_FILE, read_manifest
from muse.item2item.models.item_encoder_config import ItemEncoderConfig

MODELS_FILE = "models.pt"
TOKENIZER_DIR = "tokenizer"
SEMANTIC_IDS_DIR = "semantic_ids"
ITEM_IDS_FILE = "item_ids.npy"
ITEM_EMBEDDINGS_FILE = "item_embeddings.npy"
ITEM_TITLES_FILE = "item_titles.json"
RECIPE_ENTRY = "conversational"


@dataclass(frozen=True)
class ConversationalRecipe:
    """What the server rebuilds: each model's config and build-time sizes, the rewriter, the
    TTR weight α and the default beams, and how queries and pictures are prepared."""

    retriever: GenerativeRetrieverConfig
    encoder: ItemEncoderConfig
    rewriter: QueryRewriterConfig
    text_vocab_size: int
    id_vocab_size: int
    image_feature_width: int
    alpha: float
    beams: int
    image_mean: tuple[float, float, float]
    image_std: tuple[float, float, float]

    def to_dict(self) -> dict[str, Any]:
        return config_to_dict(self)


def read_conversational_manifest(
    bundle: str | Path, verify: bool = True
) -> tuple[dict[str, Any], ConversationalRecipe]:
    """The manifest of a conversational bundle and its recipe; DataError naming the manifest
    when it is another task's bundle or its recipe does not parse."""
    manifest = read_manifest(bundle, TaskKind.CONVERSATIONAL, verify=verify)
    source = Path(bundle) / MANIFEST_FILE
    raw = manifest.get(RECIPE_ENTRY)
    if not isinstance(raw, dict):
        raise DataError(source, f"no {RECIPE_ENTRY!r} recipe: not a conversational bundle")
    try:
        recipe = config_from_dict(ConversationalRecipe, raw, f"{source}: {RECIPE_ENTRY}")
    except ValueError as error:
        raise DataError(source, str(error)) from None
    return manifest, recipe
