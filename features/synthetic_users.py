"""One chunk of synthetic users: profiles, lifelong histories, impressions and their logits.

Everything is drawn with numpy over the whole chunk at once. The cosine of every impression's
target against every behaviour of its user's visible history is computed exactly (from the
stored int8 embeddings), in blocks of users so that memory stays bounded.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from features.synthetic_catalogue import ItemCatalogue
from features.synthetic_click_model import MatchCounts

if TYPE_CHECKING:
    from features.synthetic_world import SyntheticWorld

# The diagnostics compare the full-history click model with what a last-50 model can see.
DIAGNOSTIC_RECENT_WINDOW = 50
# Similarity work is split so that one (users, L, targets) float32 block stays near this size.
SIMILARITY_BLOCK_VALUES = 1_000_000
# An oracle view (catalogue items) singles out a behaviour whose view cosine to the target is
# above this: the same category and the same style in that view (1.0), not only the category
# (0.5 or less). See docs/synthetic-data.md, "Ranking over the multimodal catalogue".
VIEW_DISTINCT_COSINE = 0.75


class TargetSource(enum.IntEnum):
    """Where an impression's target item comes from."""

    POPULARITY = 0
    LONG_TERM_INTEREST = 1
    SHORT_TERM_INTEREST = 2
    INTEREST_CATEGORY = 3
    UNIFORM = 4


class UserDraw(NamedTuple):
    """One chunk of users before labels: generator item indices and logits without intercept."""

    profiles: np.ndarray  # (U, 5) profile value indices
    train_history: np.ndarray  # (U, L) item indices, oldest first
    test_history: np.ndarray  # (U, L)
    train_targets: np.ndarray  # (U, n_train)
    test_targets: np.ndarray  # (U, n_test)
    train_sources: np.ndarray  # (U, n_train) TargetSource
    test_sources: np.ndarray  # (U, n_test)
    train_logits: np.ndarray  # (U, n_train) float64
    test_logits: np.ndarray  # (U, n_test)
    test_last_50_logits: np.ndarray  # (U, n_test) diagnostics
    test_same_category_logits: np.ndarray  # (U, n_test)
    # Catalogue items only: the long-term count restricted to what each oracle view singles out
    # (VIEW_DISTINCT_COSINE), in the order of catalogue.oracle_views; (U, n_test, 0) otherwise.
    test_view_logits: np.ndarray  # (U, n_test, V)


def draw_users(world: SyntheticWorld, rng: np.random.Generator, num_users: int) -> UserDraw:
    """Draw ``num_users`` users: profiles, histories, impression targets and their logits."""
    config, catalogue, click_model = world.config, world.catalogue, world.click_model
    history = config.history
    impressions = config.impressions
    length, gap = history.length, history.test_time_gap
    num_topics = catalogue.num_topics

    profiles = np.stack(
        [rng.integers(0, size, num_users) for size in config.profile_cardinalities], axis=1
    )
    # Long-term interests: distinct topics, uniformly over topics (niche ones as often as popular).
    interest_count = min(history.long_term_interests, num_topics)
    interests = np.argpartition(rng.random((num_users, num_topics)), interest_count - 1, axis=1)[
        :, :interest_count
    ]
    # Short-term interests follow what is popular now.
    short_term = {
        split: _draw_topics(
            rng, catalogue.topic_popularity, (num_users, history.short_term_interests)
        )
        for split in ("train", "test")
    }

    # Lifelong sequence of length + gap: train sees the first `length`, test the last `length`.
    sequence = _draw_sequences(world, rng, interests, short_term)

    weights = np.asarray(impressions.source_weights(), dtype=np.float64)
    targets, sources = {}, {}
    for split, per_user in (
        ("train", impressions.train_per_user),
        ("test", impressions.test_per_user),
    ):
        sources[split] = rng.choice(
            len(TargetSource), size=(num_users, per_user), p=weights / weights.sum()
        )
        targets[split] = _draw_targets(rng, catalogue, sources[split], interests, short_term[split])

    bias = click_model.user_bias(profiles)[:, None]
    first_profile = profiles[:, 0][:, None]

    def logits(split_targets: np.ndarray, counts: MatchCounts) -> np.ndarray:
        return click_model.logits_without_intercept(
            counts,
            catalogue.popularity_score[split_targets],
            bias,
            first_profile,
            catalogue.category[split_targets],
        )

    counts = _match_counts(world, sequence, targets["train"], targets["test"])
    return UserDraw(
        profiles=profiles,
        train_history=sequence[:, :length],
        test_history=sequence[:, gap:],
        train_targets=targets["train"],
        test_targets=targets["test"],
        train_sources=sources["train"],
        test_sources=sources["test"],
        train_logits=logits(targets["train"], counts.train),
        test_logits=logits(targets["test"], counts.test),
        test_last_50_logits=logits(targets["test"], counts.test_last_50),
        test_same_category_logits=logits(targets["test"], counts.test_same_category),
        test_view_logits=np.stack(
            [logits(targets["test"], view_counts) for view_counts in counts.test_views], axis=-1
        )
        if counts.test_views
        else np.zeros((*targets["test"].shape, 0)),
    )


def _draw_sequences(
    world: SyntheticWorld,
    rng: np.random.Generator,
    interests: np.ndarray,
    short_term: dict[str, np.ndarray],
) -> np.ndarray:
    """(U, L + gap) item indices: background, long-term interests deep in it, recent interests."""
    catalogue, history = world.catalogue, world.config.history
    num_users, interest_count = interests.shape
    length, gap = history.length, history.test_time_gap
    sequence = world.background.draw(rng, (num_users, length + gap))
    shape = history.long_term_strength_shape
    strength = rng.gamma(shape, 1.0 / shape, (num_users, interest_count))
    planted = rng.poisson(history.long_term_share * length * strength)
    owner = np.repeat(np.arange(num_users).repeat(interest_count), planted.ravel())
    owner_topic = np.repeat(interests.ravel(), planted.ravel())
    # Only the oldest `long_term_span` of the train snapshot: never among the recent behaviours.
    span = max(1, int(history.long_term_span * length))
    positions = rng.integers(0, span, owner.size)
    sequence[owner, positions] = catalogue.by_topic.draw_within(rng, owner_topic)
    for split, window_end in (("train", length), ("test", length + gap)):
        window = np.arange(window_end - history.short_term_window, window_end)
        chosen = rng.random((num_users, window.size)) < history.short_term_share
        rows, columns = np.nonzero(chosen)
        topics = short_term[split][rows, rng.integers(0, short_term[split].shape[1], rows.size)]
        sequence[rows, window[columns]] = catalogue.by_topic.draw_within(rng, topics)
    return sequence


def _draw_targets(
    rng: np.random.Generator,
    catalogue: ItemCatalogue,
    sources: np.ndarray,
    interests: np.ndarray,
    short_term: np.ndarray,
) -> np.ndarray:
    """Target items (U, n) for the given sources (U, n)."""
    targets = np.empty(sources.shape, dtype=np.int32)
    rows, columns = np.nonzero(sources == TargetSource.POPULARITY)
    targets[rows, columns] = catalogue.by_topic.draw(rng, rows.size)
    rows, columns = np.nonzero(sources == TargetSource.LONG_TERM_INTEREST)
    topics = interests[rows, rng.integers(0, interests.shape[1], rows.size)]
    targets[rows, columns] = catalogue.by_topic.draw_within(rng, topics)
    rows, columns = np.nonzero(sources == TargetSource.SHORT_TERM_INTEREST)
    topics = short_term[rows, rng.integers(0, short_term.shape[1], rows.size)]
    targets[rows, columns] = catalogue.by_topic.draw_within(rng, topics)
    # A category the user's interest lives in, then any item of that category (mostly other topics).
    rows, columns = np.nonzero(sources == TargetSource.INTEREST_CATEGORY)
    topics = interests[rows, rng.integers(0, interests.shape[1], rows.size)]
    categories = catalogue.category[catalogue.by_topic.draw_within(rng, topics)]
    targets[rows, columns] = catalogue.by_category.draw_within(rng, categories)
    rows, columns = np.nonzero(sources == TargetSource.UNIFORM)
    targets[rows, columns] = rng.integers(0, catalogue.size, rows.size)
    return targets


class _ChunkCounts(NamedTuple):
    train: MatchCounts
    test: MatchCounts
    # Diagnostics: the long-term count restricted to what a last-50 model or a category search sees.
    test_last_50: MatchCounts
    test_same_category: MatchCounts
    # Catalogue items: the long-term count restricted to what each oracle view singles out.
    test_views: list[MatchCounts]


def _match_counts(
    world: SyntheticWorld, sequence: np.ndarray, train_targets: np.ndarray, test_targets: np.ndarray
) -> _ChunkCounts:
    """Soft match counts of every target against its user's visible history, in blocks of users.

    The train history is sequence[:, :L] and the test history sequence[:, gap:], so one cosine
    matrix per user against the whole (L + gap) sequence serves both splits.
    """
    catalogue, click_model = world.catalogue, world.click_model
    num_users, total = sequence.shape
    length = world.config.history.length
    gap = total - length
    num_train, num_test = train_targets.shape[1], test_targets.shape[1]
    targets = np.concatenate([train_targets, test_targets], axis=1)
    per_user = targets.shape[1]
    window = min(DIAGNOSTIC_RECENT_WINDOW, length)
    recent = min(world.config.click.short_term_recent, length)
    train_whole, train_recent = np.zeros((num_users, num_train)), np.zeros((num_users, num_train))
    test_whole, test_recent = np.zeros((num_users, num_test)), np.zeros((num_users, num_test))
    test_window, test_category = np.zeros((num_users, num_test)), np.zeros((num_users, num_test))
    views = list((catalogue.oracle_views or {}).values())
    test_view = [(np.zeros((num_users, num_test)), np.zeros((num_users, num_test))) for _ in views]
    block = max(1, SIMILARITY_BLOCK_VALUES // (per_user * total))
    dim = catalogue.unit_embedding.shape[1]
    # Reused buffers: fresh multi-megabyte arrays per block cost page faults.
    history_buffer = np.empty((block, total, dim), dtype=np.float32)
    target_buffer = np.empty((block, per_user, dim), dtype=np.float32)
    cosine_buffer = np.empty((block, total, per_user), dtype=np.float32)
    for start in range(0, num_users, block):
        stop = min(num_users, start + block)
        size = stop - start
        history_embeddings = history_buffer[:size]  # (b, L + gap, D)
        target_embeddings = target_buffer[:size]  # (b, n, D)
        np.take(
            catalogue.unit_embedding,
            sequence[start:stop],
            axis=0,
            out=history_embeddings,
            mode="clip",
        )
        np.take(
            catalogue.unit_embedding,
            targets[start:stop],
            axis=0,
            out=target_embeddings,
            mode="clip",
        )
        # (b, L + gap, n): history-major, the fast orientation for these thin products.
        cosines = np.matmul(
            history_embeddings, target_embeddings.transpose(0, 2, 1), out=cosine_buffer[:size]
        )
        matches = click_model.match(cosines)
        train_matches = matches[:, :length, :num_train]
        train_whole[start:stop] = train_matches.sum(axis=1)
        train_recent[start:stop] = train_matches[:, length - recent :].sum(axis=1)
        test_matches = matches[:, gap:, num_train:]
        test_whole[start:stop] = test_matches.sum(axis=1)
        test_recent[start:stop] = test_matches[:, length - recent :].sum(axis=1)
        test_window[start:stop] = test_matches[:, length - window :].sum(axis=1)
        same_category = (
            catalogue.category[sequence[start:stop, gap:]][:, :, None]
            == catalogue.category[test_targets[start:stop]][:, None, :]
        )
        same_category[:, length - window :] = True
        test_category[start:stop] = np.where(same_category, test_matches, 0.0).sum(axis=1)
        for view, (view_whole, view_recent) in zip(views, test_view, strict=True):
            # (b, L, n_test) cosines in the view (diagnostics of catalogue items only).
            view_cosines = np.matmul(
                view[sequence[start:stop, gap:]], view[test_targets[start:stop]].transpose(0, 2, 1)
            )
            seen = np.where(view_cosines > VIEW_DISTINCT_COSINE, test_matches, 0.0)
            view_whole[start:stop] = seen.sum(axis=1)
            view_recent[start:stop] = seen[:, length - recent :].sum(axis=1)
    return _ChunkCounts(
        train=MatchCounts(train_whole, train_recent),
        test=MatchCounts(test_whole, test_recent),
        test_last_50=MatchCounts(test_window, test_recent),
        test_same_category=MatchCounts(test_category, test_recent),
        test_views=[MatchCounts(whole, recent_count) for whole, recent_count in test_view],
    )


def _draw_topics(
    rng: np.random.Generator, weights: np.ndarray, shape: tuple[int, ...]
) -> np.ndarray:
    cumulative = np.cumsum(weights)
    picks = np.searchsorted(cumulative, rng.random(shape) * cumulative[-1], side="right")
    return np.minimum(picks, weights.size - 1)
