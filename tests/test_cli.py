"""Every `muse` subcommand answers --help, and unknown commands fail with usage."""

from __future__ import annotations

import subprocess
import sys

import pytest

from muse.cli.main import COMMANDS, main


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
