"""Ranking TOMLs load into TrainConfig; unknown keys and wrong types fail with clear messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from muse.cli.main import main
from muse.core.config_loader import config_to_dict, dump_toml, load_config
from muse.core.errors import ConfigError
from muse.core.task_kind import TaskKind
from muse.ranking.models.ranking_config import SearchKind
from muse.ranking.training.train_config import TrainConfig, ValidationSplit

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "path", sorted((ROOT / "configs" / "ranking").glob("*.toml")), ids=lambda p: p.stem
)
def test_every_ranking_config_loads(path: Path) -> None:
    config = load_config(TrainConfig, path)
    assert config.model.name == path.stem
    assert config.training.batch_size >= 1


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "job.toml"
    path.write_text(text)
    return path


def test_tables_and_overrides_reach_the_dataclasses(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[model]\nname = "x"\n[model.search]\nkind = "same_category"\n'
        '[data]\ndataset = "somewhere"\nvalidation_split = "time"\n[training]\nbatch_size = 32\n',
    )
    config = load_config(TrainConfig, path, ["training.max_epochs=3", "data.max_history_length=50"])
    assert config.model.search.kind is SearchKind.SAME_CATEGORY
    assert config.data.validation_split is ValidationSplit.TIME
    assert (
        config.training.batch_size,
        config.training.max_epochs,
        config.data.max_history_length,
    ) == (32, 3, 50)
    assert str(config.data.dataset) == "somewhere"


def test_unknown_key_names_the_key_and_the_allowed_ones(tmp_path: Path) -> None:
    path = _write(tmp_path, "[training]\nbach_size = 32\n")
    with pytest.raises(
        ConfigError, match=r"unknown key\(s\) training\.bach_size .*allowed: .*batch_size"
    ):
        load_config(TrainConfig, path)


def test_wrong_types_and_values_are_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path, '[training]\nbatch_size = "big"\n')
    with pytest.raises(ConfigError, match="training.batch_size must be an integer, got str 'big'"):
        load_config(TrainConfig, path)
    with pytest.raises(
        ConfigError, match=r"data.validation_split must be one of \['user', 'time'\]"
    ):
        load_config(TrainConfig, _write(tmp_path, '[data]\nvalidation_split = "random"\n'))
    with pytest.raises(ConfigError, match="validation_fraction must be in"):
        load_config(TrainConfig, _write(tmp_path, "[data]\nvalidation_fraction = 1.5\n"))


def test_cli_reports_config_errors_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, "[training]\nbatch_size = 8\n")
    code = main(
        ["train", "--config", str(path), "--set", "training.learning_rate=0.1", "--no-progress"]
    )
    error = capsys.readouterr().err
    assert code == 2
    assert "unknown key(s) training.learning_rate" in error and "Traceback" not in error
    assert main(["train", "--config", str(path), "--set", "training.batch_size=true"]) == 2
    assert "training.batch_size must be an integer, got bool True" in capsys.readouterr().err


def test_the_task_key_picks_the_config_class_and_is_saved(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, 'task = "ranking"\n[training]\nbatch_size = 8\n')
    config = load_config(TrainConfig, path)
    assert config.task is TaskKind.RANKING and TrainConfig().task is TaskKind.RANKING
    assert dump_toml(config_to_dict(config)).startswith('task = "ranking"\n')
    bogus = _write(tmp_path, 'task = "bogus"\n[training]\nbatch_size = 8\n')
    assert main(["train", "--config", str(bogus), "--no-progress"]) == 2
    assert f"{bogus}: task must be one of ['ranking', 'item_to_item', 'conversational'], got 'bogus'" in (
        capsys.readouterr().err
    )
    assert main(["train", "--config", str(path), "--set", "task=bogus", "--no-progress"]) == 2
    assert "task must be one of ['ranking', 'item_to_item', 'conversational'], got 'bogus'" in (
        capsys.readouterr().err
    )
    # item_to_item is trained too: its config class reads the item-pair [data] table.
    missing = tmp_path / "no_items"
    args = ["--set", "task=item_to_item", "--set", f'data.dataset="{missing}"', "--no-progress"]
    assert main(["train", "--config", str(path), *args]) == 2
    assert f"{missing}: directory not found" in capsys.readouterr().err
    assert (
        main(
            [
                "train",
                "--config",
                str(path),
                "--set",
                "task=item_to_item",
                "--set",
                "data.max_history_length=5",
            ]
        )
        == 2
    )
    assert "unknown key(s) data.max_history_length" in capsys.readouterr().err
