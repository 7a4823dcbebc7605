"""A/B experiment configuration: layers (own salts) → experiments (own buckets) → variants.

The layout follows overlapping-experiment systems: every layer hashes users into 10,000 buckets
with its own salt, so layers are independent; experiments in one layer reserve disjoint bucket
ranges, so they are mutually exclusive; each variant owns bucket ranges inside its experiment's
reservation, so ramping a variant up only adds buckets and never moves an enrolled user.

```toml
default_bundle = "muse"                       # used when no layer assigns a bundle

[layers.ranking]
salt = "ranking-2025-01"

[layers.ranking.default]                      # optional: unenrolled users of this layer
bundle = "muse"

[layers.ranking.experiments.muse_vs_din]
buckets = [{ start = 0, end = 9000 }]          # half-open [start, end) out of 10,000

[layers.ranking.experiments.muse_vs_din.variants.control]
bundle = "din_last50"
buckets = [{ start = 0, end = 2000 }]

[layers.ranking.experiments.muse_vs_din.variants.treatment_k100]
bundle = "muse"
buckets = [{ start = 6000, end = 8000 }]
overrides = { gsu_top_k = 100 }
```
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from muse.core.config_loader import config_from_dict
from muse.core.errors import ConfigError

NUM_BUCKETS = 10_000


class ExperimentConfigError(ConfigError):
    """An experiment config is invalid; ``errors`` holds one message per problem, each naming
    the file. A file that is missing or not TOML raises a plain :class:`ConfigError` instead."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))

    @property
    def problems(self) -> list[str]:
        return self.errors


@dataclass(frozen=True)
class BucketRange:
    """Half-open range ``[start, end)`` of a layer's 10,000 buckets."""

    start: int
    end: int

    @property
    def size(self) -> int:
        return self.end - self.start

    def __str__(self) -> str:
        return f"[{self.start}, {self.end})"


@dataclass(frozen=True)
class VariantOverrides:
    """Serving parameters a variant may change; the closed set of override keys (None = keep)."""

    # K of the GSU top-K search (items kept per candidate from the lifelong history).
    gsu_top_k: int | None = None
    # Use only the most recent N behaviours of the lifelong history (sequence-length experiments).
    max_history_length: int | None = None
    # Conversational: beams the generative retriever decodes (more test-time compute).
    beams: int | None = None
    # Conversational: α of test-time reranking, in (0, 1] (0 would drop the retriever's score).
    ttr_alpha: float | None = None

    def set_keys(self) -> tuple[str, ...]:
        """Names of the overrides this variant sets."""
        return tuple(name for name in OVERRIDE_KEYS if getattr(self, name) is not None)

    def merged_with(self, other: VariantOverrides) -> VariantOverrides:
        """These overrides with every key ``other`` sets taken from ``other``."""
        return dataclasses.replace(
            self, **{name: getattr(other, name) for name in other.set_keys()}
        )


OVERRIDE_KEYS: tuple[str, ...] = tuple(item.name for item in dataclasses.fields(VariantOverrides))


@dataclass(frozen=True)
class VariantConfig:
    """One arm: the bundle it serves (a directory under the bundle root), overrides, its buckets."""

    buckets: tuple[BucketRange, ...] = ()
    bundle: str | None = None
    overrides: VariantOverrides = field(default_factory=VariantOverrides)


@dataclass(frozen=True)
class ExperimentConfig:
    """Buckets reserved for the experiment in its layer, and its variants by name."""

    buckets: tuple[BucketRange, ...]
    variants: dict[str, VariantConfig]


@dataclass(frozen=True)
class LayerConfig:
    """An independent assignment space: its own salt, mutually exclusive experiments."""

    salt: str
    experiments: dict[str, ExperimentConfig] = field(default_factory=dict)
    # What users of this layer outside every variant get (no buckets); None: nothing.
    default: VariantConfig | None = None


@dataclass(frozen=True)
class ExperimentsConfig:
    """The whole experiment config (one TOML file under ``configs/experiments/``)."""

    default_bundle: str
    layers: dict[str, LayerConfig] = field(default_factory=dict)


def load_experiments(path: str | Path) -> ExperimentsConfig:
    """Parse ``path`` strictly (unknown keys, wrong types); raise ExperimentConfigError.

    A missing file or one that is not TOML raises :class:`ConfigError`: there is nothing to check.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: experiment config not found")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from error
    return experiments_from_dict(raw, source=str(path))


def experiments_from_dict(raw: dict[str, Any], source: str = "<dict>") -> ExperimentsConfig:
    """Build the config from a parsed TOML dict; unknown override keys are named per experiment."""
    errors = _unknown_override_keys(raw, source)
    if errors:
        raise ExperimentConfigError(errors)
    try:
        return config_from_dict(ExperimentsConfig, raw, source)
    except ConfigError as error:
        raise ExperimentConfigError([str(error)]) from error


def _unknown_override_keys(raw: dict[str, Any], source: str) -> list[str]:
    # Checked before the generic loader so that every bad key is reported with its experiment.
    errors: list[str] = []
    layers = raw.get("layers")
    if not isinstance(layers, dict):
        return errors
    allowed = ", ".join(OVERRIDE_KEYS)
    for layer_name, layer in layers.items():
        if not isinstance(layer, dict):
            continue
        default = layer.get("default")
        if isinstance(default, dict) and isinstance(default.get("overrides"), dict):
            for key in sorted(set(default["overrides"]) - set(OVERRIDE_KEYS)):
                errors.append(
                    f"{source}: layer {layer_name!r} default: unknown override key {key!r} "
                    f"(allowed: {allowed})"
                )
        experiments = layer.get("experiments")
        if not isinstance(experiments, dict):
            continue
        for experiment_name, experiment in experiments.items():
            variants = experiment.get("variants") if isinstance(experiment, dict) else None
            if not isinstance(variants, dict):
                continue
            for variant_name, variant in variants.items():
                overrides = variant.get("overrides") if isinstance(variant, dict) else None
                if not isinstance(overrides, dict):
                    continue
                for key in sorted(set(overrides) - set(OVERRIDE_KEYS)):
                    errors.append(
                        f"{source}: experiment {experiment_name!r} variant {variant_name!r}: "
                        f"unknown override key {key!r} (allowed: {allowed})"
                    )
    return errors
