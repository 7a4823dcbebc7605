"""Export a training checkpoint (``muse train``'s ``best.pt`` / ``last.pt``) to a model bundle."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from features.dataset import Dataset
from muse.core.config_loader import config_from_dict
from muse.ranking.export.bundle_writer import export_bundle
from muse.ranking.models.feature_spec import FeatureSpec
from muse.ranking.models.ranking_model import RankingModel, build_ranking_model
from muse.ranking.training.train_config import TrainConfig
from muse.search import EmbeddingTable
from muse.training.checkpoint import load_checkpoint

# Prefixes a state dict gains when saved from a wrapped (distributed) model.
_WRAPPER_PREFIXES = ("_dmp_wrapped_module.", "module.")


def model_from_checkpoint(
    checkpoint: str | Path, dataset: str | Path | None = None
) -> tuple[RankingModel, Dataset]:
    """The trained model (eval mode, CPU) and the dataset it was trained on (or ``dataset``)."""
    payload = load_checkpoint(checkpoint)
    config = config_from_dict(TrainConfig, payload["config"], source=str(checkpoint))
    if dataset is not None:
        config = dataclasses.replace(
            config, data=dataclasses.replace(config.data, dataset=Path(dataset))
        )
    data = Dataset(config.data.dataset)
    model = build_ranking_model(
        config.model, FeatureSpec.from_dataset(data), EmbeddingTable.from_dataset(data)
    )
    model.load_state_dict(_unwrapped(payload["model"]))
    return model.eval(), data


def export_checkpoint(
    checkpoint: str | Path,
    out: str | Path,
    dataset: str | Path | None = None,
    name: str | None = None,
) -> Path:
    """Write the bundle of ``checkpoint`` to ``out``; returns ``out``."""
    model, data = model_from_checkpoint(checkpoint, dataset)
    payload = load_checkpoint(checkpoint)
    progress = payload.get("progress", {})
    training = {
        "epoch": payload.get("epoch", progress.get("epochs_completed")),
        "step": payload.get("step", progress.get("step")),
        "validation": payload.get("validation"),
    }
    return export_bundle(
        model, data, out, name=name, checkpoint=checkpoint, extra={"training": training}
    )


def _unwrapped(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    plain = {}
    for key, value in state.items():
        for prefix in _WRAPPER_PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix) :]
                break
        plain[key] = value
    return plain
