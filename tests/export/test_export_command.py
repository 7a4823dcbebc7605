"""`muse export` turns a training checkpoint into a bundle that scores like the trained model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime
import torch

from muse.cli.main import main
from muse.core.config_loader import config_to_dict
from muse.core.task_kind import TaskKind
from muse.export.bundle_format import read_manifest, sha256_of
from muse.ranking.export.bundle_layout import GRAPH_FILE
from muse.ranking.training.train_config import DataConfig, TrainConfig
from muse.training.checkpoint import save_checkpoint
from tests.serving.tiny_world import EMPTY_USER, LONG_USER, SHORT_USER, TinyWorld, ranking_batch


def test_export_command_writes_a_bundle_from_a_checkpoint(
    world: TinyWorld, tmp_path: Path, capsys
) -> None:
    config = TrainConfig(model=world.din.config, data=DataConfig(dataset=world.dataset.root))
    checkpoint = save_checkpoint(
        tmp_path / "run" / "checkpoints" / "best.pt",
        {
            "config": config_to_dict(config),
            "model": world.din.state_dict(),
            "epoch": 3,
            "step": 120,
        },
    )
    out = tmp_path / "bundles" / "din_last6"
    assert main(["export", "--checkpoint", str(checkpoint), "--out", str(out)]) == 0
    assert "din_last6@" in capsys.readouterr().out
    manifest = read_manifest(out, TaskKind.RANKING)
    assert manifest["name"] == "din_last6"
    assert manifest["checkpoint"]["sha256"] == sha256_of(checkpoint)
    assert manifest["training"]["epoch"] == 3
    batch = ranking_batch(world.dataset, [EMPTY_USER, SHORT_USER, LONG_USER], [4, 5, 6])
    with torch.no_grad():
        inputs = world.din.select(batch)
        expected = world.din.score(inputs).numpy()
    session = onnxruntime.InferenceSession(
        str(out / GRAPH_FILE), providers=["CPUExecutionProvider"]
    )
    names = {node.name for node in session.get_inputs()}
    feeds = {n: t.numpy() for n, t in zip(inputs._fields, inputs, strict=True) if n in names}
    assert np.abs(session.run(None, feeds)[0] - expected).max() <= 1e-5


def test_export_command_reports_a_missing_checkpoint(tmp_path: Path, capsys) -> None:
    assert (
        main(["export", "--checkpoint", str(tmp_path / "none.pt"), "--out", str(tmp_path / "b")])
        == 2
    )
    assert "none.pt" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()
