"""Experiment configs load strictly and every validation error names the experiment at fault."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from muse.cli.main import main
from serving.experiments import (
    ExperimentConfigError,
    experiments_from_dict,
    load_experiments,
    load_validated,
    referenced_bundles,
    validate,
)

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = ROOT / "configs" / "experiments" / "default.toml"


def base_config() -> dict[str, Any]:
    """A valid two-experiment layer as a raw TOML dict; tests break one thing at a time."""
    return {
        "default_bundle": "muse",
        "layers": {
            "ranking": {
                "salt": "ranking-test",
                "experiments": {
                    "exp_a": {
                        "buckets": [{"start": 0, "end": 5000}],
                        "variants": {
                            "control": {
                                "bundle": "din_last50",
                                "buckets": [{"start": 0, "end": 1000}],
                            },
                            "treatment": {
                                "bundle": "muse",
                                "buckets": [{"start": 2000, "end": 3000}],
                            },
                        },
                    },
                    "exp_b": {
                        "buckets": [{"start": 5000, "end": 10000}],
                        "variants": {
                            "wide_k": {
                                "bundle": "muse",
                                "buckets": [{"start": 5000, "end": 7000}],
                                "overrides": {"gsu_top_k": 100},
                            },
                        },
                    },
                },
            }
        },
    }


def errors_of(raw: dict[str, Any], bundle_root: Path | None = None) -> list[str]:
    try:
        return validate(experiments_from_dict(raw), bundle_root)
    except ExperimentConfigError as error:
        return error.errors


def experiment(raw: dict[str, Any], name: str) -> dict[str, Any]:
    return raw["layers"]["ranking"]["experiments"][name]


def test_base_and_default_configs_are_valid(tmp_path: Path) -> None:
    assert errors_of(base_config()) == []
    config = load_experiments(DEFAULT_CONFIG)
    assert validate(config) == []
    assert set(referenced_bundles(config)) == {"muse", "din_last50"}
    variants = config.layers["ranking"].experiments["muse_vs_din"].variants
    assert {"control", "treatment"} <= set(variants)
    assert variants["control"].bundle == "din_last50" and variants["treatment"].bundle == "muse"
    for name in referenced_bundles(config):
        (tmp_path / name).mkdir()
    assert load_validated(DEFAULT_CONFIG, tmp_path) == config


def test_overlapping_variant_ranges_name_the_experiment() -> None:
    raw = base_config()
    experiment(raw, "exp_a")["variants"]["treatment"]["buckets"] = [{"start": 500, "end": 1500}]
    (message,) = errors_of(raw)
    assert "experiment 'exp_a'" in message and "'control' and 'treatment' overlap" in message
    assert "[500, 1000)" in message


def test_overlapping_experiments_name_both() -> None:
    raw = base_config()
    experiment(raw, "exp_b")["buckets"] = [{"start": 4000, "end": 10000}]
    (message,) = errors_of(raw)
    assert "experiments 'exp_a' and 'exp_b'" in message and "[4000, 5000)" in message


def test_ranges_over_one_hundred_percent_name_the_experiment() -> None:
    raw = base_config()
    experiment(raw, "exp_b")["buckets"] = [{"start": 5000, "end": 10001}]
    errors = errors_of(raw)
    assert any("experiment 'exp_b'" in e and "over 100%" in e for e in errors), errors

    raw = base_config()
    experiment(raw, "exp_b")["variants"]["wide_k"]["buckets"] = [{"start": 5000, "end": 12000}]
    errors = errors_of(raw)
    assert any(
        "experiment 'exp_b'" in e and "'wide_k'" in e and "over 100%" in e for e in errors
    ), errors

    raw = base_config()
    experiment(raw, "exp_a")["buckets"] = [{"start": 0, "end": 5000}, {"start": 0, "end": 5001}]
    experiment(raw, "exp_b")["buckets"] = [{"start": 5001, "end": 10000}]
    experiment(raw, "exp_b")["variants"]["wide_k"]["buckets"] = [{"start": 5001, "end": 7000}]
    errors = errors_of(raw)
    assert any("experiment 'exp_a'" in e and "10,001 buckets, over 100%" in e for e in errors), (
        errors
    )


def test_unknown_bundles_name_the_experiment(tmp_path: Path) -> None:
    (tmp_path / "muse").mkdir()
    errors = errors_of(base_config(), tmp_path)
    assert errors == [
        f"experiment 'exp_a' variant 'control': unknown bundle 'din_last50' "
        f"(no directory 'din_last50' under {tmp_path})"
    ]
    (tmp_path / "din_last50").mkdir()
    assert errors_of(base_config(), tmp_path) == []


def test_unknown_override_keys_name_every_experiment() -> None:
    raw = base_config()
    experiment(raw, "exp_a")["variants"]["treatment"]["overrides"] = {"gsu_topk": 10}
    experiment(raw, "exp_b")["variants"]["wide_k"]["overrides"] = {"gsu_top_k": 100, "model": "din"}
    with pytest.raises(ExperimentConfigError) as error:
        experiments_from_dict(raw)
    assert len(error.value.errors) == 2
    assert (
        "experiment 'exp_a' variant 'treatment': unknown override key 'gsu_topk'"
        in error.value.errors[0]
    )
    assert (
        "experiment 'exp_b' variant 'wide_k': unknown override key 'model'" in error.value.errors[1]
    )
    assert "allowed: gsu_top_k, max_history_length, beams, ttr_alpha" in error.value.errors[0]


def test_other_unknown_keys_and_wrong_types_are_rejected_with_their_path() -> None:
    raw = base_config()
    experiment(raw, "exp_a")["variants"]["control"]["bukets"] = []
    (message,) = errors_of(raw)
    assert "layers.ranking.experiments.exp_a.variants.control.bukets" in message

    raw = base_config()
    experiment(raw, "exp_b")["variants"]["wide_k"]["overrides"]["gsu_top_k"] = "100"
    (message,) = errors_of(raw)
    assert "exp_b" in message and "gsu_top_k must be an integer" in message


def test_structural_mistakes_are_reported() -> None:
    raw = base_config()
    experiment(raw, "exp_a")["variants"]["treatment"]["buckets"] = [{"start": 6000, "end": 6500}]
    experiment(raw, "exp_b")["variants"]["wide_k"]["overrides"]["gsu_top_k"] = 0
    experiment(raw, "exp_b")["variants"]["empty"] = {"buckets": [{"start": 8000, "end": 8000}]}
    errors = errors_of(raw)
    assert any(
        "experiment 'exp_a'" in e and "outside the experiment's reserved" in e for e in errors
    )
    assert any("experiment 'exp_b'" in e and "gsu_top_k must be positive" in e for e in errors)
    assert any(
        "experiment 'exp_b'" in e and "'empty'" in e and "empty or reversed" in e for e in errors
    )
    assert len(errors) == 3, errors


def test_layers_must_have_distinct_salts_and_disjoint_parameters() -> None:
    raw = base_config()
    second = copy.deepcopy(raw["layers"]["ranking"])
    raw["layers"]["gsu"] = second
    errors = errors_of(raw)
    assert any("layers 'ranking' and 'gsu' share salt" in e for e in errors), errors
    assert any(
        "layer 'gsu'" in e and "'bundle'" in e and "layer 'ranking' also sets" in e for e in errors
    )
    assert any("experiment 'exp_b' (layer 'gsu') sets 'gsu_top_k'" in e for e in errors), errors


def test_cli_validate_reports_problems_and_passes_the_default(tmp_path: Path, capsys) -> None:
    assert main(["experiments", "validate", "--config", str(DEFAULT_CONFIG)]) == 0
    assert "ok: 1 layer(s), 1 experiment(s)" in capsys.readouterr().out

    (tmp_path / "muse").mkdir()
    code = main(
        ["experiments", "validate", "--config", str(DEFAULT_CONFIG), "--bundles", str(tmp_path)]
    )
    captured = capsys.readouterr()
    assert (
        code == 1
        and "experiment 'muse_vs_din' variant 'control': unknown bundle 'din_last50'"
        in captured.err
    )

    broken = tmp_path / "broken.toml"
    broken.write_text(
        DEFAULT_CONFIG.read_text().replace(
            "overrides = { gsu_top_k = 100 }", "overrides = { top_k = 100 }"
        )
    )
    assert main(["experiments", "validate", "--config", str(broken)]) == 1
    assert "experiment 'muse_vs_din' variant 'treatment_k100': unknown override key 'top_k'" in (
        capsys.readouterr().err
    )


def test_cli_validate_previous_flags_a_ramp_that_moves_users(tmp_path: Path, capsys) -> None:
    shrunk = tmp_path / "shrunk.toml"
    shrunk.write_text(
        DEFAULT_CONFIG.read_text().replace("start = 0, end = 2000", "start = 0, end = 1500")
    )
    assert (
        main(
            ["experiments", "validate", "--config", str(DEFAULT_CONFIG), "--previous", str(shrunk)]
        )
        == 0
    )
    capsys.readouterr()
    assert (
        main(
            ["experiments", "validate", "--config", str(shrunk), "--previous", str(DEFAULT_CONFIG)]
        )
        == 1
    )
    assert "experiment 'muse_vs_din' variant 'control'" in capsys.readouterr().err


def test_cli_assign_prints_every_layer(capsys) -> None:
    assert (
        main(["experiments", "assign", "--config", str(DEFAULT_CONFIG), "--user", "3", "--json"])
        == 0
    )
    record = json.loads(capsys.readouterr().out)
    assert record["user"] == 3 and len(record["assignments"]) == 1
    assignment = record["assignments"][0]
    assert assignment["layer"] == "ranking" and 0 <= assignment["bucket"] < 10_000
    assert record["bundle"] == (assignment["bundle"] or "muse")

    assert (
        main(
            ["experiments", "assign", "--config", str(DEFAULT_CONFIG), "--user", "3", "--user", "4"]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert text.count("user ") == 2 and text.count("layer ranking bucket") == 2


def test_experiment_modules_and_commands_never_import_torch() -> None:
    code = (
        "import sys; import serving.experiments, serving.exposure_log; "
        "from muse.cli.main import main; "
        f"main(['experiments', 'validate', '--config', {str(DEFAULT_CONFIG)!r}]); "
        f"main(['experiments', 'assign', '--config', {str(DEFAULT_CONFIG)!r}, '--user', '1']); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, capture_output=True)
