"""`muse conv train`: `muse train` for conversational configs (``task = "conversational"``) only."""

from __future__ import annotations

import argparse

from muse.cli.commands import train


def build_parser(parser: argparse.ArgumentParser) -> None:
    train.build_parser(parser)


def run(args: argparse.Namespace) -> int:
    from muse.core.config_loader import read_toml
    from muse.core.errors import ConfigError
    from muse.core.task_kind import TaskKind, task_of_config
    from muse.training.run_directory import RunDirectory

    path = args.config or (RunDirectory(args.out).config if args.resume and args.out else None)
    if (
        path is not None
        and task_of_config(read_toml(path), str(path)) is not TaskKind.CONVERSATIONAL
    ):
        raise ConfigError(
            f'{path}: `muse conv train` trains conversational configs (task = "conversational"); '
            "use `muse train` for other tasks"
        )
    return train.run(args)
