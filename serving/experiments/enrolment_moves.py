"""Check a config change (a ramp) against the config it replaces: enrolled users must not move."""

from __future__ import annotations

from serving.experiments.assignment import bucket_table
from serving.experiments.experiment_config import BucketRange, ExperimentsConfig


def enrolment_moves(previous: ExperimentsConfig, current: ExperimentsConfig) -> list[str]:
    """One message per variant whose enrolled users ``current`` would reassign (empty: a safe ramp).

    A bucket that was in a variant must stay in that same experiment and variant; buckets may only
    join variants. Ending an experiment or changing a layer's salt therefore reports moves.
    """
    messages = []
    for layer_name, old_layer in previous.layers.items():
        new_layer = current.layers.get(layer_name)
        if new_layer is None or new_layer.salt != old_layer.salt:
            enrolled = sorted(
                {name for name, experiment in old_layer.experiments.items() if experiment.variants}
            )
            why = "is removed" if new_layer is None else "changes its salt"
            for experiment_name in enrolled:
                messages.append(
                    f"experiment {experiment_name!r}: layer {layer_name!r} {why}, so every enrolled "
                    "user is reassigned"
                )
            continue
        old_table = bucket_table(old_layer)
        new_table = bucket_table(new_layer)
        moved: dict[tuple[str, str], list[int]] = {}
        for bucket, (old_slot, new_slot) in enumerate(zip(old_table, new_table, strict=True)):
            if old_slot is None or old_slot.experiment is None:
                continue
            if new_slot is None or (new_slot.experiment, new_slot.variant) != (
                old_slot.experiment,
                old_slot.variant,
            ):
                moved.setdefault((old_slot.experiment, old_slot.variant), []).append(bucket)
        for (experiment_name, variant_name), buckets in moved.items():
            messages.append(
                f"experiment {experiment_name!r} variant {variant_name!r} (layer {layer_name!r}): "
                f"{len(buckets)} enrolled bucket(s) would move, starting at {_first_range(buckets)}"
            )
    return messages


def _first_range(buckets: list[int]) -> BucketRange:
    end = buckets[0] + 1
    for bucket in buckets[1:]:
        if bucket != end:
            break
        end += 1
    return BucketRange(buckets[0], end)
