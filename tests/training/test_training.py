"""Training on the planted dataset: it learns, writes its run files, is deterministic, and
`evaluate` reproduces its test metrics from the saved checkpoint."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import polars as pl
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from features.dataset import Dataset
from muse.cli.main import main
from muse.core.config_loader import load_config
from muse.core.errors import ConfigError
from muse.core.metrics import auc
from muse.ranking.training import TrainConfig, TrainResult, evaluate, train
from muse.training.checkpoint import load_checkpoint
from tests.training.conftest import make_planted_dataset, read_metrics, tiny_config


@pytest.fixture(scope="module")
def trained(
    planted_dataset: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[TrainConfig, TrainResult]:
    config = tiny_config(planted_dataset, tmp_path_factory.mktemp("run") / "muse")
    return config, train(config, progress=False)


def test_training_learns_the_planted_signal(trained: tuple[TrainConfig, TrainResult]) -> None:
    _, result = trained
    history = read_metrics(result.run_dir)["validation_history"]
    assert len(history) == result.epochs >= 2
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert result.test.auc > 0.7 and result.test.gauc > 0.65
    assert result.oracle is not None and result.test.gauc < result.oracle.gauc + 0.02
    assert result.samples_per_second > 0


def test_run_directory_holds_config_metrics_checkpoints_and_events(
    trained: tuple[TrainConfig, TrainResult],
) -> None:
    config, result = trained
    metrics = read_metrics(result.run_dir)
    assert load_config(TrainConfig, result.run_dir / "config.toml") == config
    assert (metrics["auc"], metrics["gauc"], metrics["logloss"]) == (
        result.test.auc,
        result.test.gauc,
        result.test.logloss,
    )
    assert metrics["num_samples"] == 384 and metrics["epochs"] == result.epochs
    assert metrics["best_epoch"] == result.best_epoch and 1 <= result.best_epoch <= result.epochs
    assert metrics["train_samples_per_second"] == result.samples_per_second
    last = load_checkpoint(result.run_dir / "checkpoints" / "last.pt")
    assert last["progress"]["finished"] and last["progress"]["step"] == result.steps
    events = EventAccumulator(str(result.run_dir / "tensorboard"))
    events.Reload()
    assert {"train/loss", "validation/gauc", "validation/auc", "test/gauc"} <= set(
        events.Tags()["scalars"]
    )
    assert [event.step for event in events.Scalars("validation/gauc")] == [
        v["step"] for v in metrics["validation_history"]
    ]


def test_same_seed_gives_identical_weights_and_metrics(
    trained: tuple[TrainConfig, TrainResult], tmp_path: Path
) -> None:
    config, first = trained
    again = dataclasses.replace(
        config, training=dataclasses.replace(config.training, output_dir=tmp_path / "again")
    )
    second = train(again, progress=False)
    assert second.test == first.test and second.validation == first.validation
    assert (
        read_metrics(second.run_dir)["validation_history"]
        == read_metrics(first.run_dir)["validation_history"]
    )
    first_weights = load_checkpoint(first.run_dir / "checkpoints" / "last.pt")["model"]
    second_weights = load_checkpoint(second.run_dir / "checkpoints" / "last.pt")["model"]
    assert first_weights.keys() == second_weights.keys()
    assert all(torch.equal(first_weights[name], second_weights[name]) for name in first_weights)


def test_evaluate_reproduces_the_test_metrics_and_writes_metrics_json(
    trained: tuple[TrainConfig, TrainResult], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, result = trained
    best = result.run_dir / "checkpoints" / "best.pt"
    metrics = evaluate(best, out=tmp_path / "eval")
    assert metrics == result.test
    written = read_metrics(tmp_path / "eval")
    assert written["gauc"] == result.test.gauc and written["oracle"]["gauc"] == result.oracle.gauc
    assert (tmp_path / "eval" / "config.toml").is_file()
    other = make_planted_dataset(tmp_path / "other", seed=1)
    assert (
        main(
            [
                "evaluate",
                "--checkpoint",
                str(best),
                "--dataset",
                str(other),
                "--out",
                str(tmp_path / "o"),
                "--no-progress",
            ]
        )
        == 0
    )
    assert "GAUC" in capsys.readouterr().out
    moved = read_metrics(tmp_path / "o")
    assert (
        moved["dataset"] == str(other)
        and moved["auc"] != result.test.auc
        and 0.5 < moved["auc"] <= 1
    )
    assert not math.isnan(moved["logloss"])


def test_evaluate_writes_per_sample_predictions_that_give_its_metrics(
    trained: tuple[TrainConfig, TrainResult], planted_dataset: Path, tmp_path: Path
) -> None:
    _, result = trained
    predictions = tmp_path / "predictions.parquet"
    command = ["evaluate", "--checkpoint", str(result.run_dir / "checkpoints" / "best.pt")]
    command += ["--out", str(tmp_path / "eval"), "--predictions", str(predictions), "--no-progress"]
    assert main(command) == 0
    frame = pl.read_parquet(predictions)
    assert frame.schema == {
        "user_id": pl.Int64,
        "item_id": pl.Int64,
        "label": pl.Int8,
        "probability": pl.Float64,
    }
    dataset = Dataset(planted_dataset)
    samples = dataset.samples("test")
    user_ids = dataset.users()["user_id"].to_numpy()[samples["user_index"].to_numpy()]
    item_ids = dict(zip(*(dataset.items()[c].to_list() for c in ("item_index", "item_id")), strict=True))
    assert frame.height == samples.height == result.test.num_samples
    assert frame["user_id"].to_list() == user_ids.tolist()
    assert frame["item_id"].to_list() == [item_ids[i] for i in samples["item_index"].to_list()]
    assert frame["label"].to_list() == samples["label"].to_list()
    written = read_metrics(tmp_path / "eval")
    assert auc(frame["label"].to_numpy(), frame["probability"].to_numpy()) == written["auc"]
    assert written["auc"] == result.test.auc
    assert [path.name for path in tmp_path.iterdir() if path.is_file()] == ["predictions.parquet"]


def test_a_finished_run_is_not_overwritten_without_resume(
    trained: tuple[TrainConfig, TrainResult],
) -> None:
    config, _ = trained
    with pytest.raises(ConfigError, match="already holds a run; pass --resume"):
        train(config, progress=False)


def test_resume_refuses_a_changed_config_and_a_finished_run_only_re_evaluates(
    trained: tuple[TrainConfig, TrainResult],
) -> None:
    config, first = trained
    changed = dataclasses.replace(
        config, training=dataclasses.replace(config.training, dense_learning_rate=0.5)
    )
    with pytest.raises(ConfigError, match="differing key\\(s\\): training.dense_learning_rate"):
        train(changed, resume=True, progress=False)
    again = train(config, resume=True, progress=False)
    assert again.steps == first.steps and again.test == first.test
