"""What all synthetic users share: the item catalogue, the background behaviour distribution and
the click model, with its intercept calibrated to the target positive rate."""

from __future__ import annotations

import numpy as np

from features.synthetic_catalogue import AliasSampler, ItemCatalogue, build_catalogue
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
        self.catalogue: ItemCatalogue = build_catalogue(
            config.catalogue, random_stream(config.seed, STREAM_CATALOGUE)
        )
        self.background = AliasSampler(
            background_weights(self.catalogue, config.history.background_topic_exponent)
        )
        self.click_model = ClickModel(
            config.click,
            config.profile_cardinalities,
            config.catalogue.num_categories,
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
    """Item weights of background behaviours: topic ∝ popularity ** exponent, then item in topic."""
    topic_weight = catalogue.topic_popularity**topic_exponent
    item_topic = catalogue.topic
    return topic_weight[item_topic] * catalogue.popularity / catalogue.topic_popularity[item_topic]
