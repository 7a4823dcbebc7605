"""Shared fixtures of the conversational tests: the tiny dataset and one tiny trained run."""

from __future__ import annotations

from pathlib import Path

import pytest

from muse.conversational.training.train_config import ConversationalTrainConfig
from muse.conversational.training.training_job import ConversationalTrainResult, train
from muse.core.config_loader import load_config
from tests.conversational.conversation_data import make_conversation_data

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "configs" / "conversational" / "tiny.toml"


def tiny_config(data: dict[str, Path], *overrides: str) -> ConversationalTrainConfig:
    """configs/conversational/tiny.toml over the tiny dataset, with ``overrides``."""
    return load_config(
        ConversationalTrainConfig,
        TINY,
        [
            f'data.catalogue="{data["catalogue"]}"',
            f'data.dialogues="{data["dialogues"]}"',
            f'data.semantic_ids="{data["semantic_ids"]}"',
            *overrides,
        ],
    )


@pytest.fixture(scope="session")
def conversation_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_conversation_data(tmp_path_factory.mktemp("conversation"))


@pytest.fixture(scope="session")
def trained_run(
    conversation_data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> ConversationalTrainResult:
    run = tmp_path_factory.mktemp("conversation_run") / "run"
    return train(tiny_config(conversation_data), run, progress=False)
