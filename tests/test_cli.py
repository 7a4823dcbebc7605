"""Every `muse` subcommand answers --help, unknown commands fail with usage, and commands are quiet."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from muse.cli.main import COMMANDS, main
from muse.core.config_loader import config_to_dict
from muse.ranking.training.train_config import DataConfig, TrainConfig
from muse.training.checkpoint import save_checkpoint
from tests.serving.tiny_world import tiny_world

WARNING_LINE = re.compile(r"warn", re.IGNORECASE)


@pytest.mark.parametrize("words", sorted(COMMANDS), ids=lambda words: "-".join(words))
def test_every_subcommand_has_help(words: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*words, "--help"])
    assert exit_info.value.code == 0
    assert f"muse {' '.join(words)}" in capsys.readouterr().out


def test_top_level_help_lists_commands_and_unknown_fails() -> None:
    result = subprocess.run([sys.executable, "-m", "muse.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "data synth" in result.stdout and "serve" in result.stdout
    result = subprocess.run([sys.executable, "-m", "muse.cli", "frobnicate"], capture_output=True, text=True)
    assert result.returncode == 2 and "unknown command" in result.stderr


def _quiet_run(*arguments: str) -> subprocess.CompletedProcess[str]:
    """Run `muse ARGUMENTS` in a fresh process with Python's default warning filters."""
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONWARNINGS"}
    return subprocess.run(
        [sys.executable, "-m", "muse.cli", *arguments],
        capture_output=True,
        text=True,
        env=environment,
        timeout=600,
    )


def test_help_and_a_torch_command_print_no_warnings(tmp_path_factory: pytest.TempPathFactory) -> None:
    help_run = _quiet_run("--help")
    assert help_run.returncode == 0 and help_run.stderr == ""
    # An ONNX export of the tiny MUSE model: torch, torchrec, the dynamo exporter and onnxscript.
    world = tiny_world(tmp_path_factory.getbasetemp() / "tiny_world")
    config = TrainConfig(model=world.muse.config, data=DataConfig(dataset=world.dataset.root))
    run = tmp_path_factory.mktemp("quiet_export")
    checkpoint = save_checkpoint(
        run / "checkpoints" / "best.pt",
        {"config": config_to_dict(config), "model": world.muse.state_dict(), "epoch": 1, "step": 1},
    )
    export = _quiet_run("export", "--checkpoint", str(checkpoint), "--out", str(run / "bundle"))
    assert export.returncode == 0, export.stderr
    assert [line for line in export.stderr.splitlines() if WARNING_LINE.search(line)] == []
    assert "[torch.onnx]" not in export.stdout
