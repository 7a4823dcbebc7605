"""Training checkpoints: one file per snapshot, written to a temp path, fsynced, then renamed.

A checkpoint holds full (unsharded) tensors, so it loads into a plain model for evaluation,
export and serving. ``last.pt`` is the resume point; ``best.pt`` holds the model weights with the
best validation metric so far (the ones evaluated on test at the end).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from muse.core.atomic_write import atomic_file
from muse.core.errors import DataError

CHECKPOINT_FORMAT = 1
LAST = "last.pt"
BEST = "best.pt"


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` atomically: a reader sees the previous file or the complete new one."""
    path = Path(path)
    with atomic_file(path) as staging:
        torch.save({"format": CHECKPOINT_FORMAT, **payload}, staging)
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` onto the CPU.

    Raises DataError naming ``path`` when there is no file there or it is not a muse checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "no checkpoint there")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as error:
        raise DataError(path, f"not a readable torch checkpoint ({error})") from error
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise DataError(path, f"not a muse training checkpoint (format {CHECKPOINT_FORMAT})")
    return payload
