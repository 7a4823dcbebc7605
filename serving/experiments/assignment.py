"""Deterministic user → variant assignment for every layer of an experiment config."""

from __future__ import annotations

from typing import NamedTuple

from serving.experiments.bucket_hash import bucket_of
from serving.experiments.experiment_config import (
    NUM_BUCKETS,
    ExperimentsConfig,
    LayerConfig,
    VariantOverrides,
)

DEFAULT_VARIANT = "default"


class Assignment(NamedTuple):
    """Where a user lands in one layer.

    ``experiment`` is None when the user is in no variant of the layer and gets the layer's
    default (``variant == "default"``); only enrolled assignments are exposures.
    """

    layer: str
    experiment: str | None
    variant: str
    bundle: str | None
    overrides: VariantOverrides
    bucket: int

    @property
    def enrolled(self) -> bool:
        return self.experiment is not None

    @property
    def label(self) -> str:
        """``layer/experiment/variant`` (``layer/default`` when not enrolled), for responses and metrics."""
        if self.experiment is None:
            return f"{self.layer}/{self.variant}"
        return f"{self.layer}/{self.experiment}/{self.variant}"


class Routing(NamedTuple):
    """What serving a user means: the bundle to score with, merged overrides, the assignments."""

    bundle: str
    overrides: VariantOverrides
    assignments: tuple[Assignment, ...]


class Slot(NamedTuple):
    """What one bucket of a layer holds: an experiment's variant, or the layer default."""

    experiment: str | None
    variant: str
    bundle: str | None
    overrides: VariantOverrides


def bucket_table(layer: LayerConfig) -> list[Slot | None]:
    """Slot of each of the layer's NUM_BUCKETS buckets (None: not enrolled and no default)."""
    default = None
    if layer.default is not None:
        default = Slot(None, DEFAULT_VARIANT, layer.default.bundle, layer.default.overrides)
    table: list[Slot | None] = [default] * NUM_BUCKETS
    for experiment_name, experiment in layer.experiments.items():
        for variant_name, variant in experiment.variants.items():
            slot = Slot(experiment_name, variant_name, variant.bundle, variant.overrides)
            for bucket_range in variant.buckets:
                for bucket in range(max(bucket_range.start, 0), min(bucket_range.end, NUM_BUCKETS)):
                    table[bucket] = slot
    return table


class Assigner:
    """Assigns users with a precomputed bucket → variant table per layer.

    Assumes a config that passed :func:`serving.experiments.validation.validate` (disjoint
    ranges); on overlap the variant declared last would win. Thread-safe (read-only after init).
    """

    def __init__(self, config: ExperimentsConfig) -> None:
        self.config = config
        self._tables = [
            (layer_name, layer.salt, bucket_table(layer))
            for layer_name, layer in config.layers.items()
        ]

    def assign(self, user_id: int) -> list[Assignment]:
        """The user's assignment in every layer that has one for it, in config order."""
        assignments = []
        for layer_name, salt, table in self._tables:
            bucket = bucket_of(salt, user_id)
            slot = table[bucket]
            if slot is not None:
                assignments.append(
                    Assignment(
                        layer_name,
                        slot.experiment,
                        slot.variant,
                        slot.bundle,
                        slot.overrides,
                        bucket,
                    )
                )
        return assignments

    def route(self, user_id: int) -> Routing:
        """Bundle and overrides for ``user_id``; layers own disjoint parameters, so order is moot."""
        assignments = tuple(self.assign(user_id))
        bundle = self.config.default_bundle
        overrides = VariantOverrides()
        for assignment in assignments:
            if assignment.bundle is not None:
                bundle = assignment.bundle
            overrides = overrides.merged_with(assignment.overrides)
        return Routing(bundle, overrides, assignments)

    def bundles(self) -> tuple[str, ...]:
        """Every bundle the config references (the default bundle first), without repeats."""
        return referenced_bundles(self.config)


def referenced_bundles(config: ExperimentsConfig) -> tuple[str, ...]:
    """Every bundle named by ``config``: the default bundle, layer defaults, variants."""
    names = [config.default_bundle]
    for layer in config.layers.values():
        if layer.default is not None and layer.default.bundle is not None:
            names.append(layer.default.bundle)
        for experiment in layer.experiments.values():
            names.extend(v.bundle for v in experiment.variants.values() if v.bundle is not None)
    return tuple(dict.fromkeys(names))
