"""Semantic checks of an experiment config; every message names the experiment (or layer) at fault."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from serving.experiments.experiment_config import (
    NUM_BUCKETS,
    BucketRange,
    ExperimentConfigError,
    ExperimentsConfig,
    LayerConfig,
    VariantConfig,
    load_experiments,
)


def validate(config: ExperimentsConfig, bundle_root: str | Path | None = None) -> list[str]:
    """All problems of ``config`` (empty when valid); bundles are checked when ``bundle_root`` is given.

    Checks: bucket ranges inside the 10,000 buckets and not over 100%; experiments in a layer and
    variants in an experiment disjoint; variants inside their experiment's reservation; override
    values positive; salts distinct; no parameter set by two layers; bundles present.
    """
    errors: list[str] = []
    salts: dict[str, str] = {}
    for layer_name, layer in config.layers.items():
        if not layer.salt:
            errors.append(f"layer {layer_name!r}: salt must not be empty")
        elif layer.salt in salts:
            errors.append(
                f"layers {salts[layer.salt]!r} and {layer_name!r} share salt {layer.salt!r}: "
                "their assignments would be identical, not independent"
            )
        else:
            salts[layer.salt] = layer_name
        errors.extend(_layer_errors(layer_name, layer))
    errors.extend(_parameter_conflicts(config))
    if bundle_root is not None:
        errors.extend(_bundle_errors(config, Path(bundle_root)))
    return errors


def load_validated(path: str | Path, bundle_root: str | Path | None = None) -> ExperimentsConfig:
    """Load and validate ``path``; raise ExperimentConfigError listing every problem."""
    config = load_experiments(path)
    errors = validate(config, bundle_root)
    if errors:
        raise ExperimentConfigError([f"{path}: {error}" for error in errors])
    return config


def _layer_errors(layer_name: str, layer: LayerConfig) -> list[str]:
    errors = []
    if layer.default is not None:
        if layer.default.buckets:
            errors.append(
                f"layer {layer_name!r} default: owns no buckets (it serves the unenrolled)"
            )
        errors.extend(_override_value_errors(f"layer {layer_name!r} default", layer.default))
    experiments = list(layer.experiments.items())
    for name, experiment in experiments:
        who = f"experiment {name!r} (layer {layer_name!r})"
        if not experiment.buckets:
            errors.append(f"{who}: reserves no buckets")
        if not experiment.variants:
            errors.append(f"{who}: has no variants")
        errors.extend(_ranges_errors(who, experiment.buckets))
        reserved = _covered(experiment.buckets)
        variants = list(experiment.variants.items())
        for variant_name, variant in variants:
            variant_who = f"{who} variant {variant_name!r}"
            if not variant.buckets:
                errors.append(f"{variant_who}: owns no buckets")
            errors.extend(_ranges_errors(variant_who, variant.buckets))
            outside = _covered(variant.buckets) - reserved
            if outside:
                errors.append(
                    f"{variant_who}: buckets {_describe(outside)} lie outside the experiment's "
                    "reserved ranges"
                )
            errors.extend(_override_value_errors(variant_who, variant))
        for index, (first_name, first_variant) in enumerate(variants):
            for second_name, second_variant in variants[index + 1 :]:
                shared = _covered(first_variant.buckets) & _covered(second_variant.buckets)
                if shared:
                    errors.append(
                        f"{who}: variants {first_name!r} and {second_name!r} overlap in buckets "
                        f"{_describe(shared)}"
                    )
    for index, (first_name, first) in enumerate(experiments):
        for second_name, second in experiments[index + 1 :]:
            shared = _covered(first.buckets) & _covered(second.buckets)
            if shared:
                errors.append(
                    f"experiments {first_name!r} and {second_name!r} in layer {layer_name!r} "
                    f"overlap in buckets {_describe(shared)}"
                )
    return errors


def _ranges_errors(who: str, ranges: tuple[BucketRange, ...]) -> list[str]:
    errors = []
    for bucket_range in ranges:
        if bucket_range.start < 0 or bucket_range.end > NUM_BUCKETS:
            errors.append(
                f"{who}: bucket range {bucket_range} goes beyond the {NUM_BUCKETS:,} buckets "
                f"[0, {NUM_BUCKETS}) (over 100%)"
            )
        elif bucket_range.start >= bucket_range.end:
            errors.append(f"{who}: bucket range {bucket_range} is empty or reversed")
    total = sum(max(bucket_range.size, 0) for bucket_range in ranges)
    if total > NUM_BUCKETS:
        errors.append(f"{who}: ranges total {total:,} buckets, over 100% of {NUM_BUCKETS:,}")
    seen: set[int] = set()
    for bucket_range in ranges:
        covered = _covered((bucket_range,))
        if seen & covered:
            errors.append(f"{who}: its own ranges overlap in buckets {_describe(seen & covered)}")
        seen |= covered
    return errors


def _override_value_errors(who: str, variant: VariantConfig) -> list[str]:
    errors = []
    for key in variant.overrides.set_keys():
        value = getattr(variant.overrides, key)
        if value <= 0:
            errors.append(f"{who}: override {key} must be positive, got {value}")
        elif key == "ttr_alpha" and value > 1:
            errors.append(f"{who}: override ttr_alpha must be at most 1, got {value}")
    return errors


def _parameter_conflicts(config: ExperimentsConfig) -> list[str]:
    # Layers are independent only if no two of them set the same serving parameter.
    owner: dict[str, str] = {}
    errors = []
    for layer_name, layer in config.layers.items():
        setters: dict[str, str] = {}
        named: list[tuple[str, VariantConfig]] = []
        if layer.default is not None:
            named.append((f"layer {layer_name!r} default", layer.default))
        for experiment_name, experiment in layer.experiments.items():
            named.extend(
                (f"experiment {experiment_name!r}", v) for v in experiment.variants.values()
            )
        for who, variant in named:
            keys = variant.overrides.set_keys() + (
                ("bundle",) if variant.bundle is not None else ()
            )
            for key in keys:
                setters.setdefault(key, who)
        for key, who in setters.items():
            if key in owner:
                errors.append(
                    f"{who} (layer {layer_name!r}) sets {key!r}, which layer {owner[key]!r} also "
                    "sets: layers must own disjoint parameters"
                )
        for key in setters:
            owner.setdefault(key, layer_name)
    return errors


def _bundle_errors(config: ExperimentsConfig, bundle_root: Path) -> list[str]:
    errors = []

    def check(who: str, bundle: str | None) -> None:
        if bundle is not None and not (bundle_root / bundle).is_dir():
            errors.append(
                f"{who}: unknown bundle {bundle!r} (no directory {bundle!r} under {bundle_root})"
            )

    check("default_bundle", config.default_bundle)
    for layer_name, layer in config.layers.items():
        if layer.default is not None:
            check(f"layer {layer_name!r} default", layer.default.bundle)
        for experiment_name, experiment in layer.experiments.items():
            for variant_name, variant in experiment.variants.items():
                check(f"experiment {experiment_name!r} variant {variant_name!r}", variant.bundle)
    return errors


def _covered(ranges: Iterable[BucketRange]) -> set[int]:
    covered: set[int] = set()
    for bucket_range in ranges:
        covered.update(range(max(bucket_range.start, 0), min(bucket_range.end, NUM_BUCKETS)))
    return covered


def _describe(buckets: set[int]) -> str:
    """Buckets as compact half-open ranges, e.g. ``[0, 10), [20, 25)``."""
    ordered = sorted(buckets)
    ranges = []
    start = previous = ordered[0]
    for bucket in ordered[1:]:
        if bucket != previous + 1:
            ranges.append(str(BucketRange(start, previous + 1)))
            start = bucket
        previous = bucket
    ranges.append(str(BucketRange(start, previous + 1)))
    return ", ".join(ranges)
