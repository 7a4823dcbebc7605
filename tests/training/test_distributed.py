"""Two CPU processes under torchrun (gloo, DistributedModelParallel) train the same model and agree."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch

from muse.training.checkpoint import load_checkpoint
from tests.training.conftest import read_metrics

HERE = Path(__file__).resolve().parent


def test_two_process_training_agrees_across_ranks(planted_dataset: Path, tmp_path: Path) -> None:
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        str(HERE / "distributed_worker.py"), str(planted_dataset), str(tmp_path),
    ]  # fmt: skip
    finished = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-3000:]
    views = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in range(2)]
    assert all(
        view["sharded_model"] == "DistributedModelParallel" and view["world_size"] == 2
        for view in views
    )
    assert views[0]["dense_sha256"] == views[1]["dense_sha256"]
    assert views[0]["test"] == views[1]["test"]
    assert views[0]["steps"] == views[1]["steps"] and views[0]["epochs"] == views[1]["epochs"]

    metrics = read_metrics(tmp_path / "run")
    assert metrics["world_size"] == 2 and metrics["num_samples"] == 384
    assert metrics["auc"] == views[0]["test"]["auc"]
    assert metrics["auc"] > 0.6 and metrics["gauc"] > 0.6 and metrics["logloss"] < 1.0
    # 36 of 48 users fit (16 samples each); each rank takes half of them in batches of 32.
    rows_per_rank = 36 * 16 // 2
    assert metrics["steps"] == metrics["epochs"] * -(-rows_per_rank // 32)
    # The checkpoint holds full, unsharded tables that a plain model can load.
    weights = load_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt")["model"]
    item_table = weights["sparse.collection.embeddings.item.weight"]
    assert isinstance(item_table, torch.Tensor) and item_table.shape[0] == 62
