"""How much of the synthetic benchmark's oracle GAUC each kind of behaviour search lets a model reach.

Draws users from the default synthetic world (docs/synthetic-data.md), then trains the same small
MLP on three feature sets built like MUSE's SimTier (code version: tier = ceil(cos·10) + 10,
22 tiers, log(1 + count)), always with the SimTier of the most recent 50 behaviours and the
target's popularity score:

- multimodal search: SimTier of the target's cosine top-50 over the whole history (MUSE's GSU);
- category search: SimTier of the top-50 among behaviours in the target's category (SIM-hard);
- last 50 only: nothing beyond the recent-50 SimTier (what DIN-last-50 can see).

Prints the oracle GAUC and each probe's test GAUC and the share of the last-50 → oracle gap it
closes. These are probes on ideal features (no ID embeddings to learn), not the ranking models.

    .venv/bin/python benchmarks/synthetic_learnability.py [--users 6000] [--seed 42] [--epochs 8]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from features.synthetic_config import SynthConfig
from features.synthetic_users import draw_users
from features.synthetic_world import SyntheticWorld, random_stream
from muse.core.metrics import gauc

TIERS = 22
TOP_K = 50
RECENT = 50


def simtier(cosines: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """log(1 + count) per 0.1-wide cosine tier over the last axis: (..., K) → (..., 22)."""
    tiers = np.clip(np.ceil(cosines * 10).astype(np.int64) + 10, 0, TIERS - 1)
    if valid is not None:
        tiers = np.where(valid, tiers, TIERS)  # invalid slots land in a dropped extra tier
    counts = np.stack([(tiers == tier).sum(axis=-1) for tier in range(TIERS)], axis=-1)
    return np.log1p(counts).astype(np.float32)


def probe_features(
    world: SyntheticWorld, histories: np.ndarray, targets: np.ndarray, search: str
) -> np.ndarray:
    """(U·n, F) features for targets (U, n) against histories (U, L) under one search kind."""
    catalogue = world.catalogue
    embeddings = catalogue.unit_embedding
    parts = []
    for start in range(0, histories.shape[0], 100):
        history = histories[start : start + 100]
        target = targets[start : start + 100]
        cosines = np.matmul(embeddings[target], embeddings[history].transpose(0, 2, 1))  # (b, n, L)
        features = [simtier(cosines[..., -RECENT:])]
        if search == "multimodal":
            top = -np.partition(-cosines, TOP_K - 1, axis=-1)[..., :TOP_K]
            features.append(simtier(top))
        elif search == "category":
            same = catalogue.category[history][:, None, :] == catalogue.category[target][:, :, None]
            masked = np.where(same, cosines, -2.0)
            top = -np.partition(-masked, TOP_K - 1, axis=-1)[..., :TOP_K]
            features.append(simtier(top, top > -2.0))
        features.append(catalogue.popularity_score[target][..., None])
        combined = np.concatenate(features, axis=-1)  # (b, n, F)
        parts.append(combined.reshape(-1, combined.shape[-1]))
    return np.concatenate(parts)


def train_probe(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, epochs: int, seed: int
) -> np.ndarray:
    """Fit a 64-32 MLP with logistic loss; return test logits."""
    torch.manual_seed(seed)
    torch.set_num_threads(1)  # a tiny MLP: threads only contend on the shared machine
    mean, std = train_x.mean(axis=0), train_x.std(axis=0) + 1e-6
    inputs = torch.from_numpy((train_x - mean) / std).float()
    labels = torch.from_numpy(train_y).float()
    model = torch.nn.Sequential(
        torch.nn.Linear(inputs.shape[1], 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, 32),
        torch.nn.ReLU(),
        torch.nn.Linear(32, 1),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for batch in torch.randperm(inputs.shape[0], generator=generator).split(1024):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                model(inputs[batch]).squeeze(1), labels[batch]
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        return model(torch.from_numpy((test_x - mean) / std).float()).squeeze(1).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=6_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args()
    started = time.perf_counter()
    with threadpool_limits(limits=1, user_api="blas"):
        world = SyntheticWorld(SynthConfig(seed=args.seed))
        rng = random_stream(args.seed, 1_000)
        draw = draw_users(world, rng, args.users)
    train_probability = world.click_model.probability(draw.train_logits).ravel()
    test_probability = world.click_model.probability(draw.test_logits).ravel()
    train_labels = rng.random(train_probability.shape) < train_probability
    test_labels = rng.random(test_probability.shape) < test_probability
    users = np.repeat(np.arange(args.users), draw.test_targets.shape[1])
    oracle = gauc(users, test_labels, test_probability)
    print(f"{args.users} users, {train_labels.size} train / {test_labels.size} test impressions")
    print(f"oracle GAUC {oracle:.4f}")
    results = {}
    for search in ("last_50", "category", "multimodal"):
        with threadpool_limits(limits=1, user_api="blas"):
            train_x = probe_features(world, draw.train_history, draw.train_targets, search)
            test_x = probe_features(world, draw.test_history, draw.test_targets, search)
        scores = train_probe(
            train_x, train_labels.astype(np.float32), test_x, args.epochs, args.seed
        )
        results[search] = gauc(users, test_labels, scores)
    for search, value in results.items():
        closed = (value - results["last_50"]) / (oracle - results["last_50"])
        print(
            f"{search:>10} search probe GAUC {value:.4f}  (closes {closed:.0%} of the last-50 → oracle gap)"
        )
    print(f"done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
