"""A tiny conversational dataset for the task's tests: catalogue, dialogues, semantic IDs.

The semantic IDs quantise the catalogue's oracle embeddings (any embeddings will do), with small
codebooks so that 160 items fill them; everything is generated in a few seconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from features.multimodal_catalogue import (
    ORACLE_FILE,
    ORACLE_IDS_FILE,
    generate_multimodal_catalogue,
)
from features.multimodal_catalogue_config import (
    AttributeConfig,
    ImageConfig,
    MultimodalCatalogueConfig,
    PairConfig,
)
from features.synthetic_dialogues import generate_dialogues
from features.synthetic_dialogues_config import SyntheticDialoguesConfig
from muse.conversational.semantic_ids.semantic_id_config import SemanticIdConfig
from muse.conversational.semantic_ids.semantic_ids import build_semantic_ids

CATALOGUE = MultimodalCatalogueConfig(
    num_items=160,
    attributes=AttributeConfig(
        num_categories=4, num_brands=12, image_styles_per_category=3, text_styles_per_category=3
    ),
    image=ImageConfig(size=16),
    pairs=PairConfig(train_pairs=50, test_pairs=20),
)
DIALOGUES = SyntheticDialoguesConfig(
    train_dialogues=240, validation_dialogues=40, test_dialogues=40
)
SEMANTIC_IDS = SemanticIdConfig(levels=2, codebook_size=8)


def make_conversation_data(root: Path) -> dict[str, Path]:
    """catalogue/, dialogues/ and semantic_ids/ under ``root``."""
    catalogue = root / "catalogue"
    generate_multimodal_catalogue(CATALOGUE, catalogue, progress=False)
    dialogues = root / "dialogues"
    generate_dialogues(DIALOGUES, catalogue, dialogues, progress=False)
    ids, _ = build_semantic_ids(
        np.load(catalogue / ORACLE_IDS_FILE), np.load(catalogue / ORACLE_FILE), SEMANTIC_IDS
    )
    ids.save(root / "semantic_ids")
    return {"catalogue": catalogue, "dialogues": dialogues, "semantic_ids": root / "semantic_ids"}
