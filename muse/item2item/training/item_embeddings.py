"""Item embeddings from a trained item encoder: for validation, the test report and the index.

``embed_catalogue(checkpoint, dataset)`` rebuilds the encoder a run's ``best.pt`` (or
``last.pt``) holds and embeds every item of a catalogue; ``write_item_embeddings`` saves them as
the parquet ``muse i2i index --embeddings`` and ``features.embedding_reader`` read (``item_id``
int64, ``embedding`` list<float32>, unit-norm rows).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import polars as pl
import torch

from features.item_catalogue import ItemCatalogue, read_items
from muse.core.atomic_write import atomic_file
from muse.core.config_loader import config_from_dict
from muse.core.errors import DataError
from muse.item2item.models.item_encoder import ItemEncoder
from muse.item2item.models.prompt import ItemPrompt
from muse.item2item.training.item_inputs import ItemInputs, build_prompt, item_batch_to
from muse.item2item.training.item_pair_model import ItemPairModel
from muse.item2item.training.train_config import ItemTrainConfig
from muse.training.checkpoint import load_checkpoint


class ItemEmbeddingTable(NamedTuple):
    """item_ids (M,) int64 and embeddings (M, D_out) float32, unit-norm rows."""

    item_ids: np.ndarray
    embeddings: np.ndarray


@torch.no_grad()
def embed_rows(
    encoder: ItemEncoder,
    inputs: ItemInputs,
    rows: np.ndarray,
    batch_size: int,
    device: torch.device,
) -> np.ndarray:
    """Multimodal embeddings (M, D_out) float32 of catalogue ``rows`` (M,), eval mode, no grad.

    The encoder's train/eval mode is restored afterwards.
    """
    was_training = encoder.training
    encoder.eval()
    try:
        chunks = [np.zeros((0, encoder.output_width), dtype=np.float32)]
        for start in range(0, rows.size, batch_size):
            batch = item_batch_to(inputs.items(rows[start : start + batch_size]), device)
            chunks.append(encoder(batch).multimodal.float().cpu().numpy())
        return np.concatenate(chunks)
    finally:
        encoder.train(was_training)


class TrainedEncoder(NamedTuple):
    """A run's config and its encoder (eval mode, on the CPU, best weights loaded)."""

    config: ItemTrainConfig
    encoder: ItemEncoder
    prompt: ItemPrompt


def load_trained_encoder(checkpoint_path: str | Path) -> TrainedEncoder:
    """The encoder a training checkpoint holds, with the prompt it was trained with.

    The built-in word tokenizer is rebuilt from the training catalogue (``data.dataset`` of the
    run's config), so that catalogue must still be there; a pretrained tokenizer loads from disk.
    """
    path = Path(checkpoint_path)
    checkpoint = load_checkpoint(path)
    raw = checkpoint.get("config") if isinstance(checkpoint, dict) else None
    if not isinstance(raw, dict) or raw.get("task") != "item_to_item":
        raise DataError(
            path, "not an item-to-item training checkpoint (task is not 'item_to_item')"
        )
    config = config_from_dict(ItemTrainConfig, raw, str(path))
    training_items = read_items(Path(config.data.dataset) / "items.parquet")
    prompt = build_prompt(config, training_items)
    model = ItemPairModel(config)
    model.load_state_dict(checkpoint["model"])
    model.eval()
    return TrainedEncoder(config, model.encoder, prompt)


def embed_catalogue(
    trained: TrainedEncoder,
    catalogue: ItemCatalogue,
    batch_size: int,
    device: torch.device | None = None,
) -> ItemEmbeddingTable:
    """Every item of ``catalogue`` embedded by ``trained`` (rows in catalogue order)."""
    device = device or torch.device("cpu")
    data = trained.config.data
    inputs = ItemInputs(
        catalogue, trained.prompt, trained.config.model, data.image_mean, data.image_std
    )
    encoder = trained.encoder.to(device)
    rows = np.arange(len(catalogue), dtype=np.int64)
    embeddings = embed_rows(encoder, inputs, rows, batch_size, device)
    return ItemEmbeddingTable(catalogue.item_ids.astype(np.int64), embeddings)


def write_item_embeddings(table: ItemEmbeddingTable, path: str | Path) -> None:
    """Write ``table`` as parquet: ``item_id`` int64, ``embedding`` list<float32> (atomic)."""
    frame = pl.DataFrame(
        {
            "item_id": pl.Series(table.item_ids, dtype=pl.Int64),
            "embedding": pl.Series(
                list(table.embeddings.astype(np.float32)), dtype=pl.List(pl.Float32)
            ),
        }
    )
    with atomic_file(path) as temporary:
        frame.write_parquet(temporary)
