"""The synthetic lifelong benchmark: generate it, write it, summarise it.

Writes a dataset in the Taobao-MM raw schema (so the Taobao-MM reader serves it too), plus
``test_click_probability.parquet`` (the true click probability of every test sample, row-aligned
with ``test_samples.parquet``) and the resolved ``synth_config.toml``. The generative model is
documented in docs/synthetic-data.md.

Users are generated in chunks with numpy draws vectorised over the chunk, so memory stays
bounded however many users there are; each chunk has its own random stream, so the output is a
pure function of the config (seed, sizes and chunking included).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from features.synthetic_catalogue_items import PROVENANCE_FILE, read_catalogue
from features.synthetic_config import SynthConfig
from features.synthetic_ids import CATEGORY, CITY, ITEM, PROFILE_BASE, PROVINCE, USER, hashed_ids
from features.synthetic_users import UserDraw, draw_users
from features.synthetic_world import STREAM_CHUNK, SyntheticWorld, random_stream
from features.synthetic_writer import TaobaoMMWriter
from muse.core.atomic_write import atomic_directory
from muse.core.config_loader import config_to_dict, dump_toml
from muse.core.metrics import auc, gauc

CONFIG_FILE = "synth_config.toml"


class SynthSummary(NamedTuple):
    """What one generation produced, with the oracle's metrics on the test set."""

    out_dir: Path
    num_users: int
    num_items: int
    num_train_samples: int
    num_test_samples: int
    num_events: int
    train_positive_rate: float
    test_positive_rate: float
    oracle_auc: float
    oracle_gauc: float
    # The click model with its long-term count restricted to the last 50 behaviours, and to
    # same-category behaviours plus the last 50: how much a last-50 model or a category search sees.
    last_50_oracle_gauc: float
    same_category_oracle_gauc: float
    # Items from a multimodal catalogue only (else empty): the click model with its counts
    # restricted to the behaviours an oracle view singles out (a perfect text-only or image-only
    # embedding), scored on the same test samples; view name → AUC / GAUC.
    view_oracle_auc: dict[str, float]
    view_oracle_gauc: dict[str, float]
    intercept: float
    elapsed_seconds: float
    samples_per_second: float
    events_per_second: float


class _RawIds(NamedTuple):
    """Raw (hashed) ids of every generator item index, computed once."""

    item: np.ndarray
    item_category: np.ndarray


class _TestScores(NamedTuple):
    user_ids: np.ndarray
    labels: np.ndarray
    probability: np.ndarray
    last_50_logits: np.ndarray
    same_category_logits: np.ndarray
    view_logits: np.ndarray  # (n, V), V = number of oracle views (0 without a catalogue)


def generate_synthetic(
    config: SynthConfig, out_dir: str | Path, progress: bool = True
) -> SynthSummary:
    """Generate the dataset described by ``config`` into ``out_dir`` (atomically) and summarise it."""
    # The per-user products are thin: BLAS threads only add contention (10x slower when busy).
    with threadpool_limits(limits=1, user_api="blas"):
        return _generate(config, Path(out_dir), progress)


def _generate(config: SynthConfig, out_dir: Path, progress: bool) -> SynthSummary:
    started = time.perf_counter()
    world = SyntheticWorld(config)
    num_train = config.num_users * config.impressions.train_per_user
    num_test = config.num_users * config.impressions.test_per_user
    num_events = 2 * config.num_users * config.history.length
    per_chunk = config.users_per_chunk()
    catalogue = world.catalogue
    raw = _RawIds(
        item=(
            hashed_ids(config.seed, ITEM, np.arange(catalogue.size))
            if catalogue.raw_item_ids is None
            else catalogue.raw_item_ids
        ),
        item_category=hashed_ids(config.seed, CATEGORY, catalogue.category),
    )
    scores: list[_TestScores] = []
    train_positives = 0
    with atomic_directory(out_dir) as staging:
        writer = TaobaoMMWriter(staging)
        try:
            writer.write_items(
                raw.item,
                raw.item_category,
                hashed_ids(config.seed, CITY, catalogue.city),
                hashed_ids(config.seed, PROVINCE, catalogue.province),
                catalogue.embedding_int8,
                catalogue.has_embedding,
            )
            with tqdm(
                total=num_train + num_test,
                unit="sample",
                unit_scale=True,
                desc="synth",
                disable=not progress,
            ) as bar:
                for chunk_index, first_user in enumerate(range(0, config.num_users, per_chunk)):
                    count = min(per_chunk, config.num_users - first_user)
                    rng = random_stream(config.seed, STREAM_CHUNK, chunk_index)
                    draw = draw_users(world, rng, count)
                    positives, chunk_scores = _write_chunk(
                        writer, world, raw, draw, rng, first_user
                    )
                    train_positives += positives
                    scores.append(chunk_scores)
                    bar.update(draw.train_targets.size + draw.test_targets.size)
                    events_done = 2 * (first_user + count) * config.history.length
                    bar.set_postfix(
                        events_per_s=f"{events_done / (time.perf_counter() - started):,.0f}"
                    )
        finally:
            writer.close()
        (staging / CONFIG_FILE).write_text(dump_toml(config_to_dict(config)))
        if config.items is not None:
            provenance = read_catalogue(config.items.catalogue).provenance()
            (staging / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2) + "\n")
    test = _TestScores(*(np.concatenate(parts) for parts in zip(*scores, strict=True)))
    elapsed = time.perf_counter() - started
    return SynthSummary(
        out_dir=out_dir,
        num_users=config.num_users,
        num_items=world.catalogue.size,
        num_train_samples=num_train,
        num_test_samples=num_test,
        num_events=num_events,
        train_positive_rate=train_positives / num_train if num_train else float("nan"),
        test_positive_rate=float(test.labels.mean()),
        oracle_auc=auc(test.labels, test.probability),
        oracle_gauc=gauc(test.user_ids, test.labels, test.probability),
        last_50_oracle_gauc=gauc(test.user_ids, test.labels, test.last_50_logits),
        same_category_oracle_gauc=gauc(test.user_ids, test.labels, test.same_category_logits),
        view_oracle_auc={
            view: auc(test.labels, test.view_logits[:, column])
            for column, view in enumerate(catalogue.oracle_views or {})
        },
        view_oracle_gauc={
            view: gauc(test.user_ids, test.labels, test.view_logits[:, column])
            for column, view in enumerate(catalogue.oracle_views or {})
        },
        intercept=world.click_model.intercept,
        elapsed_seconds=elapsed,
        samples_per_second=(num_train + num_test) / elapsed,
        events_per_second=num_events / elapsed,
    )


def _write_chunk(
    writer: TaobaoMMWriter,
    world: SyntheticWorld,
    raw: _RawIds,
    draw: UserDraw,
    rng: np.random.Generator,
    first_user: int,
) -> tuple[int, _TestScores]:
    """Draw the chunk's labels, write its rows; return train positives and the test scores."""
    seed, click_model = world.config.seed, world.click_model
    num_users = draw.profiles.shape[0]
    user_ids = hashed_ids(seed, USER, np.arange(first_user, first_user + num_users))
    profile_ids = np.stack(
        [
            hashed_ids(seed, PROFILE_BASE + column, values)
            for column, values in enumerate(draw.profiles.T)
        ],
        axis=1,
    )
    for split, history in (("train", draw.train_history), ("test", draw.test_history)):
        writer.write_user_features(
            split, user_ids, profile_ids, raw.item[history], raw.item_category[history]
        )
    train_probability = click_model.probability(draw.train_logits)
    test_probability = click_model.probability(draw.test_logits)
    train_labels = rng.random(train_probability.shape) < train_probability
    test_labels = rng.random(test_probability.shape) < test_probability
    writer.write_samples(
        "train",
        np.repeat(user_ids, draw.train_targets.shape[1]),
        raw.item[draw.train_targets.ravel()],
        train_labels.ravel(),
    )
    test_user_ids = np.repeat(user_ids, draw.test_targets.shape[1])
    writer.write_samples(
        "test", test_user_ids, raw.item[draw.test_targets.ravel()], test_labels.ravel()
    )
    writer.write_test_probability(test_probability.ravel())
    return int(train_labels.sum()), _TestScores(
        user_ids=test_user_ids,
        labels=test_labels.ravel(),
        probability=test_probability.ravel(),
        last_50_logits=draw.test_last_50_logits.ravel(),
        same_category_logits=draw.test_same_category_logits.ravel(),
        view_logits=draw.test_view_logits.reshape(test_user_ids.size, -1)
        if draw.test_view_logits.size
        else np.zeros((test_user_ids.size, 0)),
    )
