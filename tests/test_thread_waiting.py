"""Idle OpenMP threads sleep at once in muse's processes, unless the user chose a wait policy."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = (
    "import os, sys; {before}"
    "from muse.core.thread_waiting import prefer_sleeping_threads; "
    "print(prefer_sleeping_threads(), os.environ.get('GOMP_SPINCOUNT'))"
)


def _probe(before: str = "", **settings: str) -> list[str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
    }
    env.update(settings)
    return subprocess.run(
        [sys.executable, "-c", PROBE.format(before=before)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout.split()


def test_sets_no_spinning_before_torch_loads() -> None:
    assert _probe() == ["True", "0"]


@pytest.mark.parametrize(
    ("setting", "value"), [("OMP_WAIT_POLICY", "ACTIVE"), ("GOMP_SPINCOUNT", "300000")]
)
def test_a_users_own_setting_wins(setting: str, value: str) -> None:
    expected = value if setting == "GOMP_SPINCOUNT" else "None"
    assert _probe(**{setting: value}) == ["False", expected]


def test_too_late_once_torch_is_loaded() -> None:
    assert _probe(before="import torch; ") == ["False", "None"]


def test_the_cli_applies_it_before_any_command() -> None:
    code = (
        "import os, sys; from muse.cli.main import main; main(['--help']); "
        "print('torch' in sys.modules, os.environ.get('GOMP_SPINCOUNT'))"
    )
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
    }
    last_line = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout.splitlines()[-1]
    assert last_line == "False 0"
