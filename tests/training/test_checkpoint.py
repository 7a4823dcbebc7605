"""Checkpoints are atomic: a failed or killed write leaves the previous complete file readable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from muse.core.errors import DataError
from muse.training.checkpoint import load_checkpoint, save_checkpoint


def test_a_failed_write_keeps_the_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"step": 1, "weights": torch.ones(3)})

    def crash(payload: object, target: object) -> None:
        Path(str(target)).write_bytes(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"step": 2, "weights": torch.zeros(3)})
    monkeypatch.undo()
    restored = load_checkpoint(path)
    assert restored["step"] == 1 and torch.equal(restored["weights"], torch.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


_WRITER = """
import sys, torch
from muse.training.checkpoint import save_checkpoint
step = 0
while True:
    step += 1
    save_checkpoint(sys.argv[1], {"step": step, "weights": torch.full((200_000,), float(step))})
    print(step, flush=True)
"""


def test_a_killed_writer_never_leaves_a_torn_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout is not None
        while int(writer.stdout.readline() or 0) < 3:  # let it finish a few, then kill it mid-write
            assert writer.poll() is None
        time.sleep(0.05)
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
    restored = load_checkpoint(path)
    assert restored["step"] >= 3
    assert torch.all(restored["weights"] == float(restored["step"]))


def test_loading_something_else_is_a_clear_error(tmp_path: Path) -> None:
    torch.save({"weights": torch.ones(1)}, tmp_path / "plain.pt")
    with pytest.raises(DataError, match="not a muse training checkpoint"):
        load_checkpoint(tmp_path / "plain.pt")
    with pytest.raises(DataError, match="no checkpoint there"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "text.pt").write_text("not a checkpoint")
    with pytest.raises(DataError, match="text.pt: not a readable torch checkpoint"):
        load_checkpoint(tmp_path / "text.pt")
