"""Bad input stops a command with one line on stderr, exit code 2, and nothing left behind.

The line reads ``muse <command>: <file>: <what is wrong>``; once `muse serve` has set up its JSON
logs, the same line arrives as one JSON record. Each case runs `muse` as a user would, in a
fresh process inside a scratch directory.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from muse.core.errors import DataError
from serving.admission import Admission
from serving.errors import StartupError
from serving.hosted_service import HostedService
from serving.local_behaviour_store_config import LocalBehaviourStoreConfig
from serving.metrics import ServingMetrics
from serving.server import MuseServer
from serving.serving_config import ServingConfig

ROOT = Path(__file__).resolve().parents[1]
SERVING_CONFIG = ROOT / "configs" / "serving" / "default.toml"
EXPERIMENTS = ROOT / "configs" / "experiments" / "default.toml"


def muse(work: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """`muse ARGUMENTS` in ``work``, with Python's default warning filters."""
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONWARNINGS"}
    environment["PYTHONPATH"] = os.pathsep.join(
        part for part in (str(ROOT), environment.get("PYTHONPATH", "")) if part
    )
    return subprocess.run(
        [sys.executable, "-m", "muse.cli", *arguments],
        cwd=work,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a run that failed with exit code 2 (and printed nothing else)."""
    lines = result.stderr.splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert result.stdout == ""
    return lines[0]


def serve(work: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    """`muse serve` on the default config with its state under ``work`` and free ports."""
    arguments = ["serve", "--config", str(SERVING_CONFIG)]
    for override in (
        f'experiments="{EXPERIMENTS}"',
        f'bundle_root="{work / "bundles"}"',
        f'store.directory="{work / "store"}"',
        f'exposure_log.directory="{work / "exposures"}"',
        "port=0",
        "metrics_port=0",
        *overrides,
    ):
        arguments += ["--set", override]
    return muse(work, *arguments)


def logged_line(result: subprocess.CompletedProcess[str]) -> str:
    """The message of the one JSON record a failed `muse serve` wrote to stderr."""
    record = json.loads(one_line(result))
    assert record["level"] == "ERROR" and "traceback" not in record
    return str(record["message"])


def test_serve_names_the_missing_bundle_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "bundles" / "muse").mkdir(parents=True)  # din_last50 was never exported
    message = logged_line(serve(tmp_path))
    assert message == (
        f"muse serve: {EXPERIMENTS}: experiment 'muse_vs_din' variant 'control': unknown bundle "
        f"'din_last50' (no directory 'din_last50' under {tmp_path / 'bundles'})"
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == ["bundles"]


def test_serve_without_experiments_names_the_missing_default_bundle(tmp_path: Path) -> None:
    message = logged_line(serve(tmp_path, 'experiments=""'))
    assert message == (
        f"muse serve: {tmp_path / 'bundles'}: no model bundle 'muse' there (the serving "
        "config's default_bundle; there is no experiments config)"
    )
    assert list(tmp_path.iterdir()) == []


def test_serve_reports_every_missing_bundle_in_one_line(tmp_path: Path) -> None:
    message = logged_line(serve(tmp_path))
    assert message.startswith(f"muse serve: {EXPERIMENTS}: ") and "unknown bundle 'muse'" in message
    assert message.endswith("(and 4 more problems)")


def test_a_malformed_experiment_config_is_one_line(tmp_path: Path) -> None:
    broken = tmp_path / "experiments.toml"
    broken.write_text(EXPERIMENTS.read_text().replace("[layers.ranking]", "[layers.ranking"))
    message = logged_line(serve(tmp_path, f'experiments="{broken}"'))
    assert message.startswith(f"muse serve: {broken}: not valid TOML: ")
    line = one_line(muse(tmp_path, "experiments", "validate", "--config", str(broken)))
    assert line.startswith(f"muse experiments validate: {broken}: not valid TOML: ")

    overlapping = tmp_path / "overlapping.toml"
    overlapping.write_text(EXPERIMENTS.read_text().replace("start = 3000", "start = 1000"))
    message = logged_line(serve(tmp_path, f'experiments="{overlapping}"'))
    assert message.startswith(f"muse serve: {overlapping}: experiment 'muse_vs_din'")
    assert "overlap" in message
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "experiments.toml",
        "overlapping.toml",
    ]


def test_unknown_config_keys_are_one_line(tmp_path: Path) -> None:
    line = one_line(
        muse(tmp_path, "serve", "--config", str(SERVING_CONFIG), "--set", "no_such_key=1")
    )
    assert line.startswith(f"muse serve: {SERVING_CONFIG}: unknown key(s) no_such_key for ")
    line = one_line(muse(tmp_path, "data", "synth", "--out", "synth", "--set", "catalogue.size=3"))
    assert line.startswith(
        "muse data synth: configs/data/synth_default.toml: config file not found"
    )
    line = one_line(
        muse(
            tmp_path,
            "data",
            "synth",
            "--config",
            str(ROOT / "configs/data/synth_default.toml"),
            "--out",
            "synth",
            "--set",
            "catalogue.size=3",
        )
    )
    assert "unknown key(s) catalogue.size for CatalogueConfig" in line
    assert list(tmp_path.iterdir()) == []


def test_a_wrong_dataset_path_is_one_line(tmp_path: Path) -> None:
    line = one_line(
        muse(tmp_path, "data", "prepare", "taobao-mm", "--input", "nowhere", "--out", "dataset")
    )
    assert line == "muse data prepare: nowhere: input directory not found"
    line = one_line(
        muse(
            tmp_path,
            "train",
            "--config",
            str(ROOT / "configs/ranking/muse.toml"),
            "--set",
            "data.dataset=nowhere",
            "--out",
            "run",
            "--no-progress",
        )
    )
    assert line == "muse train: nowhere: no dataset there (`muse data prepare` writes one)"
    line = one_line(muse(tmp_path, "evaluate", "--checkpoint", "run/checkpoints/best.pt"))
    assert line == "muse evaluate: run/checkpoints/best.pt: no checkpoint there"
    assert list(tmp_path.iterdir()) == []


class _FailingEngine:
    """An engine whose load fails the way a bad bundle does; records that it was closed."""

    def __init__(self) -> None:
        self.closed = False

    def load(self) -> None:
        raise DataError("bundles/broken", "not a model bundle")

    def start(self) -> None:
        raise AssertionError("never started after a failed load")

    async def close(self) -> None:
        self.closed = True


def _config(tmp_path: Path, port: int = 0) -> ServingConfig:
    store = LocalBehaviourStoreConfig(dataset=tmp_path / "dataset", directory=tmp_path / "store")
    return ServingConfig(bundle_root=tmp_path, store=store, port=port, metrics_port=0)


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_a_failed_start_shuts_down_what_it_started(tmp_path: Path) -> None:
    engine = _FailingEngine()

    def failing(
        config: ServingConfig, metrics: ServingMetrics, admission: Admission
    ) -> HostedService:
        return HostedService("test.Failing", lambda server: None, engine)

    async def start_and_fail() -> MuseServer:
        server = MuseServer(_config(tmp_path), [failing])
        with pytest.raises(DataError, match="not a model bundle"):
            await server.start()
        return server

    server = asyncio.run(start_and_fail())
    assert engine.closed
    assert server.port and _free(server.port)
    assert server.metrics_port and _free(server.metrics_port)


def test_a_taken_port_is_a_startup_error(tmp_path: Path) -> None:
    engine = _FailingEngine()

    def service(
        config: ServingConfig, metrics: ServingMetrics, admission: Admission
    ) -> HostedService:
        return HostedService("test.Failing", lambda server: None, engine)

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        async def start() -> None:
            await MuseServer(_config(tmp_path, port), [service]).start()

        with pytest.raises(StartupError, match=f"127.0.0.1:{port}: cannot listen there"):
            asyncio.run(start())
    assert engine.closed
