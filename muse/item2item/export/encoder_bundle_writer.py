"""Write an item-encoder bundle (see :mod:`muse.item2item.export.encoder_bundle_layout`).

The bundle is built in a temporary sibling directory and renamed into place only once it has
passed its own check: example items (texts of several lengths, PNG images) go through the
serving path (``tokenizer.json`` + :class:`NewItemInputs` + onnxruntime) and through the
training path (the Hugging Face tokenizer + :class:`ItemPrompt` + the torch encoder); the token
ids must be equal and the embeddings within ``tolerance`` (max abs), or nothing is written.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import torch
from PIL import Image

from muse.core.atomic_write import atomic_directory
from muse.core.config_loader import config_to_dict
from muse.core.task_kind import TaskKind
from muse.export.bundle_format import MANIFEST_FILE, file_checksums, manifest_header, sha256_of
from muse.item2item.batch import ItemBatch
from muse.item2item.export.encoder_bundle_layout import (
    ENCODER_CONTENTS,
    GRAPH_FILE,
    GRAPH_INPUTS,
    TOKENIZER_FILE,
    EncoderRecipe,
)
from muse.item2item.export.encoder_graph import OPSET, export_encoder_onnx
from muse.item2item.export.new_item_inputs import NewItem, NewItemInputs
from muse.item2item.models.item_encoder import ItemEncoder
from muse.item2item.models.item_encoder_config import ItemEncoderConfig, ItemEncoderKind
from muse.item2item.models.prompt import ItemPrompt
from muse.item2item.models.prompt_layout import ItemText

PARITY_TOLERANCE = 1e-4
EXAMPLE_ITEMS = 5


def example_items(prompt: ItemPrompt, image_size: int, seed: int = 0) -> list[NewItem]:
    """EXAMPLE_ITEMS new items with texts of different lengths (words the prompt itself uses,
    so a built-in word tokenizer knows them) and random PNG images of ``image_size``."""
    config = prompt.config
    words = " ".join(
        (config.image_prefix, config.image_instruction, config.text_prefix, config.text_instruction)
    ).split()
    rng = np.random.default_rng(seed)
    items = []
    for index in range(EXAMPLE_ITEMS):
        picked = [words[i % len(words)] for i in range(index * 3, index * 3 + 2 + 3 * index)]
        pixels = rng.integers(0, 256, (image_size, image_size, 3), dtype=np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG")
        items.append(
            NewItem(
                title=" ".join(picked[:2]),
                content=" ".join(picked[2:]),
                topics=tuple(picked[: index % 3]),
                image=buffer.getvalue(),
            )
        )
    return items


def write_encoder_bundle(
    encoder: ItemEncoder,
    model_config: ItemEncoderConfig,
    prompt: ItemPrompt,
    image_mean: tuple[float, float, float],
    image_std: tuple[float, float, float],
    out: str | Path,
    *,
    name: str | None = None,
    checkpoint: str | Path | None = None,
    extra: dict[str, Any] | None = None,
    tolerance: float = PARITY_TOLERANCE,
) -> dict[str, Any]:
    """Export ``encoder`` (trained with ``prompt`` and images normalised by ``image_mean`` /
    ``image_std``) as a bundle at directory ``out``; returns the manifest written.

    ``name`` defaults to the directory name; the version is the name plus a content hash.
    Raises ValueError, writing nothing, when the bundle fails its parity check.
    """
    out = Path(out)
    name = name or out.name
    tokenizer = prompt.tokenizer
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ValueError(
            f"{type(tokenizer).__name__} is not a fast tokenizer: the bundle ships tokenizer.json, "
            "which only a fast (tokenizers-backed) tokenizer can save"
        )
    encoder = encoder.eval()
    image_size = model_config.vision.image_size
    reads_images = model_config.sees_images
    examples = example_items(prompt, image_size)
    texts = [ItemText(item.title, item.topics, item.content) for item in examples]
    with atomic_directory(out) as staging:
        backend.save(str(staging / TOKENIZER_FILE))
        recipe = EncoderRecipe(
            encoder_kind=model_config.kind.value,
            reads_images=reads_images,
            reads_text=model_config.kind is not ItemEncoderKind.VISION_ONLY,
            prompt=prompt.config,
            pad_id=prompt.pad_id,
            placeholder_id=prompt.placeholder_id,
            compression_id=prompt.compression_id,
            max_plain_tokens=prompt.max_plain_tokens,
            truncation_side=str(getattr(tokenizer, "truncation_side", "right")),
            image_size=image_size,
            image_mean=tuple(float(v) for v in image_mean),  # type: ignore[arg-type]
            image_std=tuple(float(v) for v in image_std),  # type: ignore[arg-type]
            output_dim=encoder.output_width,
            graph_inputs=GRAPH_INPUTS if reads_images else GRAPH_INPUTS[:-1],
        )
        # The serving path's inputs first: the graph is exported on exactly these arrays.
        serving = NewItemInputs.from_file(recipe, staging / TOKENIZER_FILE)
        feeds = serving.feeds(examples)
        images = None
        if reads_images:
            pixels = np.stack([serving.pixels(item.image) for item in examples])
            mean = torch.tensor(image_mean, dtype=torch.float32).view(1, 3, 1, 1)
            std = torch.tensor(image_std, dtype=torch.float32).view(1, 3, 1, 1)
            images = (torch.from_numpy(pixels).to(torch.float32) / 255.0 - mean) / std
        batch = prompt.encode(texts, images)
        _check_same_inputs(batch, feeds)
        export_encoder_onnx(encoder, batch, staging / GRAPH_FILE)
        session = onnxruntime.InferenceSession(
            str(staging / GRAPH_FILE), providers=["CPUExecutionProvider"]
        )
        kept = tuple(node.name for node in session.get_inputs())
        recipe = dataclasses.replace(recipe, graph_inputs=kept)
        (served,) = session.run(None, {input_name: feeds[input_name] for input_name in kept})
        with torch.no_grad():
            reference = encoder(batch).multimodal.float().numpy()
        difference = float(np.abs(np.asarray(served) - reference).max())
        if not difference <= tolerance:
            raise ValueError(
                f"the exported encoder differs from the torch one by {difference:.3g} (max abs) "
                f"on {len(examples)} example items, more than the {tolerance:g} allowed"
            )
        files = file_checksums(staging)
        digest = hashlib.sha256("".join(files[file] for file in sorted(files)).encode())
        manifest = {
            **manifest_header(TaskKind.ITEM_TO_ITEM),
            "contents": ENCODER_CONTENTS,
            "name": name,
            "version": f"{name}@{digest.hexdigest()[:12]}",
            "created_unix": int(time.time()),
            "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "encoder": recipe.to_dict(),
            "model_config": config_to_dict(model_config),
            "opset": OPSET,
            "export_check": {
                "items": len(examples),
                "max_abs_difference": difference,
                "tolerance": tolerance,
            },
            "checkpoint": (
                {"path": str(Path(checkpoint).resolve()), "sha256": sha256_of(checkpoint)}
                if checkpoint is not None
                else None
            ),
            "files": files,
            **(extra or {}),
        }
        (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def export_encoder_checkpoint(
    checkpoint: str | Path, out: str | Path, name: str | None = None
) -> dict[str, Any]:
    """Write the encoder bundle of an item-to-item training checkpoint; returns its manifest."""
    from muse.item2item.training.item_embeddings import load_trained_encoder

    trained = load_trained_encoder(checkpoint)
    data = trained.config.data
    return write_encoder_bundle(
        trained.encoder,
        trained.config.model,
        trained.prompt,
        data.image_mean,
        data.image_std,
        out,
        name=name,
        checkpoint=checkpoint,
        extra={"training_config": trained.config.name},
    )


def _check_same_inputs(batch: ItemBatch, feeds: dict[str, np.ndarray]) -> None:
    """The serving path's prompt arrays equal the training path's, or a ValueError says where."""
    for field in GRAPH_INPUTS[:-1]:
        expected = getattr(batch, field).numpy()
        if field in feeds and not np.array_equal(feeds[field], expected):
            raise ValueError(
                f"tokenizer.json builds different {field} from the training tokenizer's prompt "
                "(a tokenizer whose Python wrapper adds behaviour its saved form lacks)"
            )
    if batch.images is not None and not np.array_equal(feeds["images"], batch.images.numpy()):
        raise ValueError("the serving image preprocessing differs from the training one")
