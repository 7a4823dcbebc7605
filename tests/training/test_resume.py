"""kill -9 during `muse train`, then `muse train --resume`: it continues from the last checkpoint
and ends exactly where an uninterrupted run ends."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from muse.core.config_loader import config_to_dict, dump_toml
from muse.ranking.training import train
from muse.training.checkpoint import load_checkpoint
from tests.training.conftest import read_metrics, tiny_config

ROOT = Path(__file__).resolve().parents[2]


def _muse(*args: str) -> list[str]:
    return [sys.executable, "-m", "muse.cli", *args]


def test_resume_after_sigkill_matches_an_uninterrupted_run(
    planted_dataset: Path, tmp_path: Path
) -> None:
    settings = {"batch_size": 16, "max_epochs": 3, "patience": 5, "checkpoint_every_steps": 4}
    config = tiny_config(planted_dataset, tmp_path / "killed", **settings)
    config_path = tmp_path / "job.toml"
    config_path.write_text(dump_toml(config_to_dict(config)))
    run = tmp_path / "killed"
    last = run / "checkpoints" / "last.pt"

    child = subprocess.Popen(
        _muse("train", "--config", str(config_path), "--no-progress"), cwd=ROOT
    )
    try:
        deadline = time.monotonic() + 120
        while not last.exists():
            assert child.poll() is None, "training ended before writing its first checkpoint"
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    killed_at = load_checkpoint(last)["progress"]
    assert not killed_at["finished"] and not (run / "metrics.json").exists()

    resumed = subprocess.run(
        _muse("train", "--out", str(run), "--resume", "--no-progress"),
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed from step {killed_at['step']} " in resumed.stdout + resumed.stderr

    reference_config = dataclasses.replace(
        config, training=dataclasses.replace(config.training, output_dir=tmp_path / "uninterrupted")
    )
    reference = train(reference_config, progress=False)
    metrics, expected = read_metrics(run), read_metrics(reference.run_dir)
    assert killed_at["step"] < metrics["steps"] == expected["steps"]
    assert expected["epochs"] == 3
    for key in ("auc", "gauc", "logloss", "validation_history", "best_epoch", "epochs"):
        assert metrics[key] == expected[key], key
    resumed_weights = load_checkpoint(last)["model"]
    reference_weights = load_checkpoint(reference.run_dir / "checkpoints" / "last.pt")["model"]
    assert all(
        torch.equal(resumed_weights[name], reference_weights[name]) for name in reference_weights
    )
    assert not list((run / "checkpoints").glob(".*.tmp-*"))
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    steps = [event.step for event in events.Scalars("train/loss")]
    assert steps == sorted(set(steps)) and steps[-1] == metrics["steps"] - metrics["steps"] % 2
