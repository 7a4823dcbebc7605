"""Assignment is stable, uniform, layer-independent, and ramps never move enrolled users.

Statistical checks use 200,000 users drawn with a fixed seed and a strict threshold: a p-value
below 0.001 fails. Each check is paired with a biased input the same test must catch.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from serving.experiments import (
    NUM_BUCKETS,
    Assigner,
    ExperimentsConfig,
    bucket_of,
    enrolment_moves,
    experiments_from_dict,
    goodness_of_fit,
    independence,
    load_experiments,
)

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = ROOT / "configs" / "experiments" / "default.toml"
NUM_USERS = 200_000
SEED = 20_250_101
P_VALUE_THRESHOLD = 1e-3


@pytest.fixture(scope="module")
def user_ids() -> list[int]:
    rng = np.random.default_rng(SEED)
    return rng.integers(
        np.iinfo(np.int64).min, np.iinfo(np.int64).max, NUM_USERS, dtype=np.int64
    ).tolist()


def layer(salt: str, variants: dict[str, tuple[int, int]], **variant_extra: Any) -> dict[str, Any]:
    return {
        "salt": salt,
        "experiments": {
            f"{salt}_experiment": {
                "buckets": [{"start": 0, "end": NUM_BUCKETS}],
                "variants": {
                    name: {"buckets": [{"start": start, "end": end}], **variant_extra.get(name, {})}
                    for name, (start, end) in variants.items()
                },
            }
        },
    }


def config_of(**layers: dict[str, Any]) -> ExperimentsConfig:
    return experiments_from_dict({"default_bundle": "muse", "layers": layers})


def test_bucket_is_sha256_of_salt_and_user_id_and_never_changes() -> None:
    digest = hashlib.sha256(b"ranking-v1\x00123456789").digest()
    assert bucket_of("ranking-v1", 123456789) == int.from_bytes(digest[:8], "big") % NUM_BUCKETS
    # Pinned: changing the hash would silently reshuffle every running experiment.
    assert [bucket_of("ranking-v1", user) for user in (0, 3, 4, -1)] == [3879, 939, 6844, 9291]


def test_assignment_is_identical_in_other_processes() -> None:
    code = (
        "from serving.experiments import Assigner, load_experiments; "
        f"assigner = Assigner(load_experiments({str(DEFAULT_CONFIG)!r})); "
        "print([(a.bucket, a.experiment, a.variant) for u in range(-500, 500) for a in assigner.assign(u)])"
    )
    assigner = Assigner(load_experiments(DEFAULT_CONFIG))
    expected = str(
        [(a.bucket, a.experiment, a.variant) for u in range(-500, 500) for a in assigner.assign(u)]
    )
    for hash_seed in ("1", "987654"):
        environment = {**os.environ, "PYTHONHASHSEED": hash_seed}
        result = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
            env=environment,
        )
        assert result.stdout.strip() == expected


def test_buckets_are_uniform_for_random_and_sequential_ids(user_ids: list[int]) -> None:
    for ids in (user_ids, range(NUM_USERS)):
        counts = np.bincount([bucket_of("ranking-v1", user) for user in ids], minlength=NUM_BUCKETS)
        result = goodness_of_fit(counts.tolist(), [1.0] * NUM_BUCKETS)
        assert result.degrees_of_freedom == NUM_BUCKETS - 1
        assert result.p_value > P_VALUE_THRESHOLD, result
    # The same test rejects the classic modulo bias: a 16-bit digest mod 10,000 favours buckets
    # below 5,536 (7 of 65,536 residues against 6).
    biased = [
        int.from_bytes(hashlib.sha256(f"ranking-v1\x00{user}".encode()).digest()[:2], "big")
        % NUM_BUCKETS
        for user in user_ids
    ]
    counts = np.bincount(biased, minlength=NUM_BUCKETS)
    assert goodness_of_fit(counts.tolist(), [1.0] * NUM_BUCKETS).p_value < 1e-9


def test_variant_sample_ratios_match_their_bucket_shares(user_ids: list[int]) -> None:
    config = load_experiments(DEFAULT_CONFIG)
    assigner = Assigner(config)
    seen = Counter(assigner.assign(user)[0].variant for user in user_ids)
    experiment = config.layers["ranking"].experiments["muse_vs_din"]
    shares = {
        name: sum(r.size for r in v.buckets) / NUM_BUCKETS
        for name, v in experiment.variants.items()
    }
    shares["default"] = 1.0 - sum(shares.values())
    names = sorted(shares)
    result = goodness_of_fit([seen[name] for name in names], [shares[name] for name in names])
    assert result.p_value > P_VALUE_THRESHOLD, result
    for name in names:
        assert abs(seen[name] / NUM_USERS - shares[name]) < 0.005
    # A logging bug that loses 5% of one variant's users is a sample-ratio mismatch.
    lossy = {name: seen[name] * (0.95 if name == "treatment" else 1.0) for name in names}
    assert (
        goodness_of_fit([round(lossy[n]) for n in names], [shares[n] for n in names]).p_value < 1e-9
    )


def test_layers_are_independent(user_ids: list[int]) -> None:
    config = config_of(
        ranking=layer("ranking-v1", {"din": (0, 5000), "muse": (5000, NUM_BUCKETS)}),
        gsu=layer("gsu-v1", {"k25": (0, 3000), "k50": (3000, 6000), "k100": (6000, NUM_BUCKETS)}),
    )
    table = joint_counts(Assigner(config), user_ids)
    result = independence(table)
    assert result.degrees_of_freedom == 2
    assert result.p_value > P_VALUE_THRESHOLD, result
    # Joint shares are the product of the marginals within a percentage point.
    rows = np.array(table, dtype=float) / NUM_USERS
    assert np.abs(rows - np.outer(rows.sum(1), rows.sum(0))).max() < 0.01
    # Layers sharing a salt are fully dependent, and the test sees it.
    same_salt = config_of(
        ranking=layer("shared", {"din": (0, 5000), "muse": (5000, NUM_BUCKETS)}),
        gsu=layer("shared", {"k25": (0, 3000), "k50": (3000, 6000), "k100": (6000, NUM_BUCKETS)}),
    )
    assert independence(joint_counts(Assigner(same_salt), user_ids[:20_000])).p_value < 1e-12


def joint_counts(assigner: Assigner, user_ids: list[int]) -> list[list[int]]:
    layers = list(assigner.config.layers.values())
    first = list(next(iter(layers[0].experiments.values())).variants)
    second = list(next(iter(layers[1].experiments.values())).variants)
    table = [[0] * len(second) for _ in first]
    for user in user_ids:
        a, b = assigner.assign(user)
        table[first.index(a.variant)][second.index(b.variant)] += 1
    return table


def test_ramp_from_20_to_30_percent_moves_no_enrolled_user(user_ids: list[int]) -> None:
    before = config_of(ranking=layer("ramp", {"treatment": (0, 2000), "control": (5000, 7000)}))
    after = config_of(ranking=layer("ramp", {"treatment": (0, 3000), "control": (5000, 8000)}))
    old, new = Assigner(before), Assigner(after)
    grown = Counter()
    for user in user_ids:
        old_assignment = old.assign(user)
        new_assignment = new.assign(user)
        if old_assignment:
            assert [(a.experiment, a.variant) for a in new_assignment] == [
                (a.experiment, a.variant) for a in old_assignment
            ]
        grown.update(a.variant for a in new_assignment)
    assert abs(grown["treatment"] / NUM_USERS - 0.30) < 0.005
    assert enrolment_moves(before, after) == []
    # Re-packing the ranges instead (control shifted to [3000, 6000)) would move users; it is caught.
    repacked = config_of(ranking=layer("ramp", {"treatment": (0, 3000), "control": (3000, 6000)}))
    repacked_assigner = Assigner(repacked)
    moved = sum(
        1
        for user in user_ids[:20_000]
        if old.assign(user) and old.assign(user) != repacked_assigner.assign(user)
    )
    assert moved > 0
    (message,) = enrolment_moves(before, repacked)
    assert "variant 'control'" in message and "1000 enrolled bucket(s) would move" in message


def test_experiments_in_a_layer_are_exclusive_and_routing_merges_layers(
    user_ids: list[int],
) -> None:
    ranking = layer("ranking-v1", {"din": (0, 5000)}, din={"bundle": "din_last50"})
    ranking["experiments"]["other"] = {
        "buckets": [{"start": 5000, "end": NUM_BUCKETS}],
        "variants": {"muse": {"bundle": "muse", "buckets": [{"start": 5000, "end": NUM_BUCKETS}]}},
    }
    gsu = layer("gsu-v1", {"k100": (0, 5000)}, k100={"overrides": {"gsu_top_k": 100}})
    assigner = Assigner(config_of(ranking=ranking, gsu=gsu))
    per_experiment = Counter()
    for user in user_ids[:20_000]:
        routing = assigner.route(user)
        ranking_assignments = [a for a in routing.assignments if a.layer == "ranking"]
        assert len(ranking_assignments) == 1
        per_experiment[ranking_assignments[0].experiment] += 1
        in_k100 = any(a.variant == "k100" for a in routing.assignments)
        assert routing.overrides.gsu_top_k == (100 if in_k100 else None)
        assert routing.bundle == ranking_assignments[0].bundle
    assert set(per_experiment) == {"ranking-v1_experiment", "other"}


def test_unenrolled_users_get_the_layer_default_or_the_config_default() -> None:
    config = load_experiments(DEFAULT_CONFIG)
    assigner = Assigner(config)
    unenrolled = next(u for u in range(1000) if not assigner.assign(u)[0].enrolled)
    (assignment,) = assigner.assign(unenrolled)
    assert assignment.variant == "default" and assignment.label == "ranking/default"
    assert assigner.route(unenrolled).bundle == "muse"
    bare = Assigner(config_of(ranking=layer("x", {"only": (0, 1)})))
    user = next(u for u in range(1000) if not bare.assign(u))
    assert bare.route(user).bundle == "muse" and bare.route(user).assignments == ()
