"""The demo's online half: export trained runs, start `muse serve`, score one user per A/B variant."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from features.dataset import Dataset
from muse.export.checkpoint_export import export_checkpoint
from serving.experiments.assignment import Assigner
from serving.experiments.experiment_config import load_experiments
from serving.ranking.client import RankingClient
from serving.server_process import ServerProcess

CANDIDATES_PER_REQUEST = 5


def export_and_score_each_variant(
    runs: dict[str, Path],
    dataset_dir: Path,
    experiment_config: Path,
    serving_config: Path,
    work_dir: Path,
) -> dict[str, Any]:
    """Export every run, serve them, score one user per variant; returns what was scored."""
    shutil.rmtree(work_dir, ignore_errors=True)
    bundle_root = work_dir / "bundles"
    for name, run_dir in runs.items():
        bundle = export_checkpoint(
            run_dir / "checkpoints" / "best.pt", bundle_root / name, dataset=dataset_dir
        )
        print(f"exported {name} → {bundle}", flush=True)
    experiments = load_experiments(experiment_config)
    assigner = Assigner(experiments)
    missing = sorted(set(assigner.bundles()) - set(runs))
    if missing:
        raise SystemExit(f"{experiment_config}: names bundles the demo did not train: {missing}")
    dataset = Dataset(dataset_dir)
    users = _one_user_per_variant(assigner, dataset)
    overrides = [
        f'bundle_root="{bundle_root}"',
        f'experiments="{experiment_config}"',
        f'store.dataset="{dataset_dir}"',
        f'store.directory="{work_dir / "store"}"',
        f'exposure_log.directory="{work_dir / "exposures"}"',
        "port=0",
        "metrics_port=0",
    ]
    server = ServerProcess(serving_config, overrides=overrides, log_path=work_dir / "server.log")
    scored = []
    server.start()
    try:
        print(f"server ready at {server.address}", flush=True)
        with RankingClient(server.address) as client:
            for label, user_id in users.items():
                candidates = _candidates_for(dataset, user_id)
                result = client.score(user_id, candidates)
                experiment, _, variant = label.partition("/")
                scored.append(
                    {
                        "user_id": user_id,
                        "experiment": experiment,
                        "variant": variant,
                        "model_version": result.model_version,
                        "scores": result.scores,
                        "assignments": result.assignments,
                    }
                )
                print(
                    f"user {user_id} [{label}] → {result.model_version}: {np.round(result.scores, 4).tolist()}"
                )
    finally:
        exit_code = server.terminate()
    return {
        "address": server.address,
        "bundles": len(runs),
        "scored": scored,
        "clean_shutdown": exit_code == 0,
    }


def _one_user_per_variant(assigner: Assigner, dataset: Dataset) -> dict[str, int]:
    """The first test user (by raw id order in the test samples) landing in each variant."""
    test_users = dataset.users()["user_id"].to_numpy()[
        dataset.samples("test")["user_index"].to_numpy()
    ]
    wanted: dict[str, int] = {}
    labels_seen = set()
    for user_id in dict.fromkeys(test_users.tolist()):
        for assignment in assigner.assign(int(user_id)):
            label = (
                f"{assignment.experiment}/{assignment.variant}"
                if assignment.enrolled
                else "default/default"
            )
            if label not in labels_seen:
                labels_seen.add(label)
                wanted[label] = int(user_id)
        if len(labels_seen) >= _variant_count(assigner) + 1:
            break
    return wanted


def _variant_count(assigner: Assigner) -> int:
    config = assigner.config
    return sum(
        len(e.variants) for layer in config.layers.values() for e in layer.experiments.values()
    )


def _candidates_for(dataset: Dataset, user_id: int) -> list[int]:
    """Raw ids of the user's test targets (what a ranking request would carry)."""
    users = dataset.users()
    rows = np.flatnonzero(users["user_id"].to_numpy() == user_id)
    test = dataset.samples("test")
    items = test.filter(test["user_index"].is_in(rows.tolist()))["item_index"].to_numpy()[
        :CANDIDATES_PER_REQUEST
    ]
    return dataset.vocabulary("item").raw_of(items).tolist()
