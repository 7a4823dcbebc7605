"""A/B experiment configs: load, validate, assign users to variants, check ramps and sample ratios.

Typical server use::

    config = load_validated("configs/experiments/default.toml", bundle_root="runs/bundles")
    assigner = Assigner(config)
    routing = assigner.route(user_id)       # routing.bundle, routing.overrides, routing.assignments
"""

from serving.experiments.assignment import (
    DEFAULT_VARIANT,
    Assigner,
    Assignment,
    Routing,
    Slot,
    bucket_table,
    referenced_bundles,
)
from serving.experiments.bucket_hash import bucket_of
from serving.experiments.chi_square import (
    ChiSquareResult,
    chi_square_survival,
    goodness_of_fit,
    independence,
)
from serving.experiments.enrolment_moves import enrolment_moves
from serving.experiments.experiment_config import (
    NUM_BUCKETS,
    OVERRIDE_KEYS,
    BucketRange,
    ExperimentConfig,
    ExperimentConfigError,
    ExperimentsConfig,
    LayerConfig,
    VariantConfig,
    VariantOverrides,
    experiments_from_dict,
    load_experiments,
)
from serving.experiments.validation import load_validated, validate

__all__ = [
    "DEFAULT_VARIANT",
    "NUM_BUCKETS",
    "OVERRIDE_KEYS",
    "Assigner",
    "Assignment",
    "BucketRange",
    "ChiSquareResult",
    "ExperimentConfig",
    "ExperimentConfigError",
    "ExperimentsConfig",
    "LayerConfig",
    "Routing",
    "Slot",
    "VariantConfig",
    "VariantOverrides",
    "bucket_of",
    "bucket_table",
    "chi_square_survival",
    "enrolment_moves",
    "experiments_from_dict",
    "goodness_of_fit",
    "independence",
    "load_experiments",
    "load_validated",
    "referenced_bundles",
    "validate",
]
