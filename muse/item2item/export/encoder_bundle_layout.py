"""The item-encoder bundle: the files beside its manifest, and the recipe serving follows.

```
<bundle>/
  manifest.json       generic header (task "item_to_item"), "contents": "item_encoder", name,
                      version, the recipe ("encoder"), the model config, the checkpoint, the
                      export's parity check, and the sha256 of every other file
  encoder.onnx        the item encoder: ItemBatch fields → multimodal (B, D) unit rows; dynamic
                      batch B and prompt length T
  encoder.onnx.data   its weights
  tokenizer.json      the prompt's tokenizer (Hugging Face ``tokenizers`` format)
```

Serving builds a new item's prompt from the recipe's prompt config and ``tokenizer.json`` with
the layout training used (:mod:`muse.item2item.models.prompt_layout`), and its image with the
recipe's size, mean and std, so it never imports torch, transformers or training code. An index
bundle names the encoder bundle that made its vectors (``encoder_bundle``: name and version).
Imports no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from muse.core.config_loader import config_from_dict, config_to_dict
from muse.core.errors import DataError
from muse.core.task_kind import TaskKind
from muse.export.bundle_format import MANIFEST_FILE, read_manifest
from muse.item2item.models.prompt_config import PromptConfig

GRAPH_FILE = "encoder.onnx"
TOKENIZER_FILE = "tokenizer.json"
# The manifest's "contents": tells an encoder bundle from an index bundle of the same task.
ENCODER_CONTENTS = "item_encoder"
# The index manifest's entry naming its encoder bundle (a directory beside the index bundle).
INDEX_ENCODER_ENTRY = "encoder_bundle"
# Graph inputs, in ItemBatch order; a graph may drop those its encoder never reads.
GRAPH_INPUTS = (
    "token_ids",
    "attention_mask",
    "image_placeholder_index",
    "image_compression_index",
    "last_index",
    "images",
)
GRAPH_OUTPUT = "multimodal"


@dataclass(frozen=True)
class EncoderRecipe:
    """What serving computes before the graph (the manifest's ``encoder`` entry).

    encoder_kind: the config's ``model.kind``. reads_images / reads_text: whether the encoder
    uses a new item's image / text. prompt: the prompt config it was trained with; pad_id,
    placeholder_id, compression_id: its token ids; max_plain_tokens and truncation_side: how a
    ``plain`` prompt is truncated. image_size S, image_mean, image_std: each image is converted
    to RGB, resized to S × S (bilinear) and normalised per channel. output_dim: D.
    graph_inputs: the inputs the graph kept, by name.
    """

    encoder_kind: str
    reads_images: bool
    reads_text: bool
    prompt: PromptConfig
    pad_id: int
    placeholder_id: int
    compression_id: int
    max_plain_tokens: int
    truncation_side: str
    image_size: int
    image_mean: tuple[float, float, float]
    image_std: tuple[float, float, float]
    output_dim: int
    graph_inputs: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = MANIFEST_FILE) -> EncoderRecipe:
        """Parse and check a manifest's ``encoder`` entry (unknown keys and bad enums rejected)."""
        return config_from_dict(cls, data, source, prefix="encoder.")


def read_encoder_manifest(bundle: str | Path, verify: bool = True) -> dict[str, Any]:
    """The manifest of the encoder bundle at ``bundle`` (checksums verified with ``verify``).

    Raises DataError naming the manifest when the bundle is not an item-encoder bundle, or the
    file that is missing, unlisted or corrupt.
    """
    bundle = Path(bundle)
    manifest = read_manifest(bundle, TaskKind.ITEM_TO_ITEM, verify=verify)
    if manifest.get("contents") != ENCODER_CONTENTS:
        raise DataError(
            bundle / MANIFEST_FILE,
            f"not an item-encoder bundle (contents {manifest.get('contents')!r}, expected "
            f"{ENCODER_CONTENTS!r}); `muse i2i export` writes one",
        )
    return manifest


def encoder_recipe(manifest: dict[str, Any], bundle: str | Path) -> EncoderRecipe:
    """The recipe of an encoder bundle's manifest; DataError names the manifest when it is bad."""
    source = str(Path(bundle) / MANIFEST_FILE)
    if not isinstance(manifest.get("encoder"), dict):
        raise DataError(source, "the manifest has no 'encoder' recipe")
    return EncoderRecipe.from_dict(manifest["encoder"], source)
