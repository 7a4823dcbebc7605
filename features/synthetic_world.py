"""What all synthetic users share: the item catalogue, the background behaviour distribution and
the click model, with its intercept calibrated to the target positive rate.

The catalogue is drawn by the generator (features/synthetic_catalogue.py) or, with ``[items]
catalogue`` set, taken from a multimodal catalogue (features/synthetic_catalogue_items.py).
"""

from __future__ import annotations

import numpy as np

from features.synthetic_catalogue import AliasSampler, ItemCatalogue, build_catalogue
from features.synthetic_catalogue_items import load_catalogue_items
from features.synthetic_click_model import ClickModel
from features.synthetic_config import SynthConfig
from features.synthetic_users import draw_users

# Independent random streams derived from the seed.
STREAM_CATALOGUE, STREAM_CLICK_MODEL, STREAM_CALIBRATION, STREAM_CHUNK = 0, 1, 2, 3


def random_stream(seed: int, *path: int) -> np.random.Generator:
    """The random generator of one named stream (e.g. (STREAM_CHUNK, chunk index)) of a seed."""
    return np.random.default_rng([seed, *path])


class SyntheticWorld:
    """Catalogue, background sampler and calibrated click model of one config (deterministic)."""

    def __init__(self, config: SynthConfig) -> None:
        self.config = config
        catalogue_rng = random_stream(config.seed, STREAM_CATALOGUE)
        self.catalogue: ItemCatalogue = (
            build_catalogue(config.catalogue, catalogue_rng)
            if config.items is None
            else load_catalogue_items(config.items.catalogue, config.catalogue, catalogue_rng)
        )
        self.background = AliasSampler(
            background_weights(self.catalogue, config.history.background_topic_exponent),
            # Catalogue items belong to two topics: a drawn membership maps to its item.
            None if config.items is None else self.catalogue.member_items,
        )
        self.click_model = ClickModel(
            config.click,
            config.profile_cardinalities,
            self.catalogue.num_categories,
            random_stream(config.seed, STREAM_CLICK_MODEL),
        )
        # Pilot users from their own stream fix the intercept before any real user is drawn.
        pilot = draw_users(
            self, random_stream(config.seed, STREAM_CALIBRATION), config.click.calibration_users
        )
        self.click_model.calibrate(
            np.concatenate([pilot.train_logits.ravel(), pilot.test_logits.ravel()])
        )


def background_weights(catalogue: ItemCatalogue, topic_exponent: float) -> np.ndarray:
    """Membership weights of background behaviours: topic ∝ popularity ** exponent, then an item
    of the topic ∝ popularity (one membership per item in the generator's own catalogue)."""
    topic_weight = catalogue.topic_popularity**topic_exponent
    topic = catalogue.member_topics
    return topic_weight[topic] * catalogue.member_weights / catalogue.topic_popularity[topic]
