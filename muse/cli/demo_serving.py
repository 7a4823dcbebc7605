"""The demo's online half: export trained runs, start `muse serve`, score one user per A/B variant."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from features.dataset import Dataset
from muse.cli.sample_requests import shown_in_test_split, users_in_test_split
from muse.ranking.export.checkpoint_export import export_checkpoint
from serving.experiments.assignment import DEFAULT_VARIANT, Assigner
from serving.experiments.experiment_config import load_experiments
from serving.ranking.client import RankingClient, ScoreResult
from serving.server_process import ServerProcess

CANDIDATES_PER_REQUEST = 5


class VariantScore(NamedTuple):
    """The (layer, experiment, variant) probed, the user found in it, and the server's answer."""

    slot: tuple[str, str, str]
    user_id: int
    result: ScoreResult


def users_per_variant(
    experiments: str | Path, user_ids: Iterable[int]
) -> dict[tuple[str, str, str], int]:
    """First user of ``user_ids`` in each (layer, experiment, variant); "" experiment = layer default."""
    config = load_experiments(experiments)
    assigner = Assigner(config)
    wanted = set()
    for layer_name, layer in config.layers.items():
        if layer.default is not None:
            wanted.add((layer_name, "", DEFAULT_VARIANT))
        for experiment_name, experiment in layer.experiments.items():
            wanted.update((layer_name, experiment_name, variant) for variant in experiment.variants)
    found: dict[tuple[str, str, str], int] = {}
    for user_id in user_ids:
        for assignment in assigner.assign(user_id):
            slot = (assignment.layer, assignment.experiment or "", assignment.variant)
            found.setdefault(slot, user_id)
        if set(found) >= wanted:
            break
    return {slot: found[slot] for slot in sorted(found)}


def score_each_variant(
    address: str,
    experiments: str | Path,
    candidates_of: Callable[[int], Sequence[int]],
    user_ids: Iterable[int] = range(1, 100_000),
    timeout: float = 30.0,
) -> list[VariantScore]:
    """One Score call per variant of ``experiments`` against the server at ``address``.

    ``candidates_of(user_id)``: the raw item ids to score for that user.
    """
    with RankingClient(address) as client:
        return [
            VariantScore(slot, user, client.score(user, candidates_of(user), timeout=timeout))
            for slot, user in users_per_variant(experiments, user_ids).items()
        ]


def export_and_score_each_variant(
    runs: dict[str, Path],
    dataset_dir: Path,
    bundle_root: Path,
    experiment_config: Path,
    serving_config: Path,
    work_dir: Path,
    extra_overrides: Sequence[str] = (),
    while_serving: Callable[[str], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Export every run to ``bundle_root``/<name>, serve them, score one test user per variant.

    The server reads ``serving_config`` with its ports set free and its behaviour store, exposure
    log and log under ``work_dir`` (emptied first), plus ``extra_overrides`` (e.g. hosting
    SimilarItems); ``while_serving(address)`` runs against it before shutdown and its answer is
    returned under "extra". Returns what was scored.
    """
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir(parents=True)
    for name, run_dir in runs.items():
        bundle = export_checkpoint(
            run_dir / "checkpoints" / "best.pt", bundle_root / name, dataset=dataset_dir
        )
        print(f"exported {name} → {bundle}", flush=True)
    dataset = Dataset(dataset_dir)
    overrides = [
        f'bundle_root="{bundle_root}"',
        f'experiments="{experiment_config}"',
        f'store.dataset="{dataset_dir}"',
        f'store.directory="{work_dir / "store"}"',
        f'exposure_log.directory="{work_dir / "exposures"}"',
        "port=0",
        "metrics_port=0",
        *extra_overrides,
    ]
    server = ServerProcess(serving_config, overrides=overrides, log_path=work_dir / "server.log")
    server.start()
    try:
        print(f"server ready at {server.address}", flush=True)
        probes = score_each_variant(
            server.address,
            experiment_config,
            lambda user_id: shown_in_test_split(dataset, user_id, CANDIDATES_PER_REQUEST),
            users_in_test_split(dataset),
        )
        extra = while_serving(server.address) if while_serving is not None else None
    finally:
        exit_code = server.terminate()
    scored = []
    for probe in probes:
        _, experiment, variant = probe.slot
        result = probe.result
        scored.append(
            {
                "user_id": probe.user_id,
                "experiment": experiment or DEFAULT_VARIANT,
                "variant": variant,
                "model_version": result.model_version,
                "scores": result.scores,
                "assignments": result.assignments,
            }
        )
        print(
            f"user {probe.user_id} [{experiment or DEFAULT_VARIANT}/{variant}] → "
            f"{result.model_version}: {np.round(result.scores, 4).tolist()}"
        )
    return {
        "address": server.address,
        "bundles": len(runs),
        "bundle_root": str(bundle_root),
        "serving_config": str(serving_config),
        "scored": scored,
        "clean_shutdown": exit_code == 0,
        "extra": extra,
    }
