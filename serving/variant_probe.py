"""Score one user in each experiment variant through a running server (the demo's last step)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

from serving.experiments.assignment import DEFAULT_VARIANT, Assigner
from serving.experiments.experiment_config import load_experiments
from serving.ranking.client import RankingClient, ScoreResult


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
    candidate_item_ids: Sequence[int],
    user_ids: Iterable[int] = range(1, 100_000),
    timeout: float = 30.0,
) -> list[VariantScore]:
    """One Score call per variant of ``experiments`` against the server at ``address``."""
    with RankingClient(address) as client:
        return [
            VariantScore(slot, user, client.score(user, candidate_item_ids, timeout=timeout))
            for slot, user in users_per_variant(experiments, user_ids).items()
        ]
