"""Configuration of the conversational service (the ``[conversational]`` table). Imports no torch."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path


class TorchDevice(enum.Enum):
    """Where the models run; AUTO takes CUDA when it is available."""

    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"


@dataclass(frozen=True)
class ConversationalConfig:
    """``bundle_root`` holds one directory per conversational bundle (``muse conv export``). With
    an ``experiments`` config (the ranking's format; its bundles name conversational bundles and
    its variants may set ``beams`` and ``ttr_alpha``) each user is routed to their variant;
    without one, everyone gets ``default_bundle``.

    ``catalogue`` is the catalogue directory (items.parquet) whose pictures a turn may refer to
    by item id; each referred picture's vision features are computed once and kept for up to
    ``picture_cache_items`` items. Sessions: at most ``max_sessions`` dialogues, each dropped after
    ``session_ttl_seconds`` unused and cut to its latest ``max_session_turns`` turns.
    ``workers`` threads run the models, each with ``torch_threads`` intra-op threads.
    """

    bundle_root: Path
    catalogue: Path
    default_bundle: str = "conversational"
    experiments: Path | None = None
    max_k: int = 100
    max_beams: int = 100
    max_text_chars: int = 2_000
    max_sessions: int = 10_000
    session_ttl_seconds: float = 1_800.0
    max_session_turns: int = 32
    picture_cache_items: int = 10_000
    workers: int = 1
    torch_threads: int = 1
    device: TorchDevice = TorchDevice.AUTO

    def __post_init__(self) -> None:
        for name in (
            "max_k",
            "max_beams",
            "max_text_chars",
            "max_sessions",
            "max_session_turns",
            "picture_cache_items",
            "workers",
            "torch_threads",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"conversational.{name} must be ≥ 1, got {getattr(self, name)}")
        if self.session_ttl_seconds <= 0:
            raise ValueError("conversational.session_ttl_seconds must be > 0")
