"""README's walkthrough runs as written, command by command, and leaves what the defaults serve.

The commands come from the fenced block after the walkthrough marker in README.md, so README and
code cannot drift apart. The test only appends arguments to a command (argparse keeps the last
value of an option): tiny data sizes, one epoch, no progress bars, free ports. It runs every
command in order in a scratch directory, starts `muse serve` in the background and waits until it
serves, scores with `muse client`, then stops the server with SIGTERM (a clean drain, exit 0).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from muse.cli.commands.demo import DEFAULT_CONFIG as DEMO_CONFIG
from muse.cli.commands.demo import DemoConfig
from muse.cli.main import COMMANDS
from muse.core.config_loader import apply_overrides, dump_toml, load_config
from muse.ranking.training.train_config import TrainConfig
from serving.experiments import Assigner, load_validated
from serving.serving_config import ServingConfig

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MARKER = "<!-- walkthrough:"
WARNING = re.compile(r"warn", re.IGNORECASE)

# What the test appends to each command, by its `muse` subcommand: tiny sizes, one epoch, quiet.
TINY_SYNTH = {
    "num_users": 60,
    "catalogue.num_items": 2000,
    "catalogue.num_topics": 50,
    "catalogue.num_categories": 20,
    "catalogue.embedding_dim": 16,
    "history.length": 60,
    "history.test_time_gap": 5,
    "history.short_term_window": 10,
}
EXTRA_ARGUMENTS: dict[tuple[str, ...], list[str]] = {
    ("data", "synth"): [
        *(part for key, value in TINY_SYNTH.items() for part in ("--set", f"{key}={value}")),
        "--no-progress",
    ],
    ("data", "prepare"): ["--no-progress"],
    ("train",): ["--set", "training.max_epochs=1", "--no-progress"],
    ("evaluate",): ["--no-progress"],
}
# Arguments naming files a command must leave behind.
OUTPUT_OPTIONS = ("--out", "--predictions")


def walkthrough_commands(text: str) -> list[list[str]]:
    """The argument lists of the ```bash block right after README's walkthrough marker."""
    lines = text.splitlines()
    starts = [number for number, line in enumerate(lines) if line.startswith(MARKER)]
    assert len(starts) == 1, f"README.md needs one line starting {MARKER!r} before the walkthrough"
    fence = starts[0] + 1
    assert fence < len(lines) and lines[fence].strip() == "```bash", (
        "the walkthrough marker must be followed directly by a ```bash block"
    )
    commands = []
    for line in lines[fence + 1 :]:
        if line.strip() == "```":
            break
        words = shlex.split(line, comments=True)
        if words:
            commands.append(words)
    else:
        pytest.fail("the walkthrough block in README.md has no closing ```")
    assert commands, "the walkthrough block in README.md is empty"
    for words in commands:
        assert words[0] == "muse", f"walkthrough lines must be muse commands: {words}"
    return commands


def subcommand(argv: list[str]) -> tuple[str, ...]:
    """The COMMANDS key ``argv`` (without the leading ``muse``) runs, as the dispatcher finds it."""
    for words in sorted(COMMANDS, key=len, reverse=True):
        if tuple(argv[: len(words)]) == words:
            return words
    return ()


def parse(argv: list[str]) -> argparse.Namespace:
    """``argv`` parsed by its subcommand's parser, as `muse` would (without running it)."""
    words = subcommand(argv)
    module = importlib.import_module(f"muse.cli.commands.{COMMANDS[words][0]}")
    parser = argparse.ArgumentParser(prog=f"muse {' '.join(words)}")
    module.build_parser(parser)
    return parser.parse_args(argv[len(words) :])


def option(argv: list[str], name: str) -> str | None:
    """The last value of option ``name`` in ``argv``, if any."""
    values = [argv[i + 1] for i, word in enumerate(argv[:-1]) if word == name]
    return values[-1] if values else None


@pytest.fixture(scope="module")
def commands() -> list[list[str]]:
    return [words[1:] for words in walkthrough_commands(README.read_text())]


def test_the_marker_and_block_are_required() -> None:
    with pytest.raises(AssertionError, match="needs one line"):
        walkthrough_commands("# README\n\n```bash\nmuse --help\n```\n")
    block = f"{MARKER} x -->\n```bash\nmuse --help   # a comment\n\nmuse train --config a.toml\n```"
    assert walkthrough_commands(block) == [
        ["muse", "--help"],
        ["muse", "train", "--config", "a.toml"],
    ]


def test_every_walkthrough_command_parses(commands: list[list[str]]) -> None:
    for argv in commands:
        if argv in (["--help"], []):
            continue
        assert subcommand(argv), f"README runs an unknown command: muse {shlex.join(argv)}"
        parse(argv)


def test_the_walkthrough_leaves_what_the_defaults_and_the_demo_use(
    commands: list[list[str]],
) -> None:
    """README, configs/serving + configs/experiments defaults and `make demo` agree on paths."""
    by_command: dict[tuple[str, ...], list[argparse.Namespace]] = {}
    for argv in commands:
        if subcommand(argv):
            by_command.setdefault(subcommand(argv), []).append(parse(argv))
    (serve,) = by_command[("serve",)]
    serving = load_config(ServingConfig, ROOT / serve.config)
    (prepare,) = by_command[("data", "prepare")]
    assert Path(prepare.out) == Path(serving.store.dataset)
    # Every bundle the experiment config routes to is exported under the serving bundle root.
    assert serving.experiments is not None
    served = Assigner(load_validated(ROOT / serving.experiments)).bundles()
    exported = {Path(export.out) for export in by_command[("export",)]}
    assert {Path(serving.bundle_root) / name for name in served} <= exported
    # Each exported checkpoint is one the walkthrough trains, and every training reads the dataset.
    trained = {}
    for train in by_command[("train",)]:
        config = load_config(TrainConfig, ROOT / train.config, train.overrides)
        assert Path(config.data.dataset) == Path(prepare.out)
        trained[config.model.name] = config.run_directory
    for export in by_command[("export",)]:
        assert Path(export.checkpoint).parent.parent in trained.values()
    # `make demo` writes the same data, trains the same models and serves with the same configs.
    demo = load_config(DemoConfig, ROOT / DEMO_CONFIG)
    (synth,) = by_command[("data", "synth")]
    assert demo.raw_data_dir == Path(synth.out) == Path(prepare.input)
    assert demo.serving_config == Path(serve.config)
    assert demo.experiment_config == serving.experiments
    demo_models = {
        load_config(TrainConfig, ROOT / path).model.name for path in demo.ranking_configs
    }
    assert set(served) <= demo_models and set(served) <= set(trained)
    (evaluate,) = by_command[("evaluate",)]
    assert evaluate.predictions, "the walkthrough shows `muse evaluate --predictions FILE`"


def _environment() -> dict[str, str]:
    """The user's environment with Python's default warning filters and this checkout importable."""
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONWARNINGS"}
    environment["PYTHONPATH"] = os.pathsep.join(
        part for part in (str(ROOT), environment.get("PYTHONPATH", "")) if part
    )
    return environment


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if WARNING.search(line)]


class _Server:
    """`muse serve` in the background; ``start`` returns once its ready file is written."""

    def __init__(self, argv: list[str], work: Path) -> None:
        self.ready_file = work / "serve-ready.json"
        self.stderr_path = work / "serve.stderr"
        self.argv = [*argv, "--set", "port=0", "--set", "metrics_port=0"]
        self.argv += ["--ready-file", str(self.ready_file)]
        self.work = work
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 300.0) -> str:
        with open(self.stderr_path, "wb") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "muse.cli", *self.argv],
                cwd=self.work,
                env=_environment(),
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        deadline = time.monotonic() + timeout
        while not self.ready_file.exists():
            assert self.process.poll() is None, f"muse serve exited:\n{self.stderr()}"
            assert time.monotonic() < deadline, f"muse serve not ready:\n{self.stderr()}"
            time.sleep(0.1)
        return str(json.loads(self.ready_file.read_text())["address"])

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM, then the exit code (SIGKILL if it does not drain in ``timeout``)."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise


# The demo's multimodal catalogue and item encoders at toy size (tiny conv vision, one epoch).
TINY_ITEMS = ("num_items=300", "image.size=32", "pairs.train_pairs=300", "pairs.test_pairs=60")
TINY_ITEM_TRAINING = (
    "['training.max_epochs=1', 'model.vision.kind=\"tiny_conv\"', 'model.vision.image_size=32']"
)

TINY_DIALOGUES = "['train_dialogues=200', 'validation_dialogues=30', 'test_dialogues=30']"
# The tiny conversational config reads 16×16 pictures through a tiny conv: match the catalogue.
TINY_CONVERSATIONAL = "['training.max_epochs=1', 'encoder.vision.image_size=32']"


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    """A working directory holding a copy of configs/, as a fresh clone would."""
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    yield tmp_path


@pytest.mark.slow
def test_the_readme_walkthrough_runs_command_by_command(
    commands: list[list[str]], scratch: Path
) -> None:
    server: _Server | None = None
    address = None
    client_outputs = []
    try:
        for argv in commands:
            words = subcommand(argv)
            if words == ("serve",):
                assert server is None, "the walkthrough starts one server"
                server = _Server(argv, scratch)
                address = server.start()
                continue
            extra = list(EXTRA_ARGUMENTS.get(words, []))
            if words == ("client",):
                assert address is not None, "the walkthrough runs the client after `muse serve`"
                extra += ["--address", address]
            shown = f"muse {shlex.join(argv)}"
            result = subprocess.run(
                [sys.executable, "-m", "muse.cli", *argv, *extra],
                cwd=scratch,
                env=_environment(),
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert result.returncode == 0, f"{shown} failed:\n{result.stdout}\n{result.stderr}"
            assert _warnings(result.stderr) == [], f"{shown} warned:\n{result.stderr}"
            for name in OUTPUT_OPTIONS:
                written = option(argv, name)
                assert written is None or (scratch / written).exists(), f"{shown}: no {written}"
            if words == ("client",):
                client_outputs.append(result.stdout)
    finally:
        exit_code = server.terminate() if server is not None and server.process else None
    assert server is not None and exit_code == 0, server.stderr() if server else "no server"
    server_log = server.stderr()
    assert "Traceback" not in server_log and _warnings(server_log) == [], server_log
    assert [json.loads(line)["message"] for line in server_log.splitlines()][-1] == "stopped"

    # The client got one score per candidate back from the served bundles.
    assert client_outputs, "the walkthrough ends with `muse client` scoring against `muse serve`"
    for output in client_outputs:
        request = re.search(r"request: user (-?\d+), (\d+) candidates", output)
        assert request, output
        scores = re.findall(r"^-?\d+\t([0-9.]+)$", output, re.MULTILINE)
        assert len(scores) == int(request.group(2)) > 0, output
        assert all(0.0 < float(score) < 1.0 for score in scores), output
        assert re.search(r"^model_version: (muse|din_last50)@", output, re.MULTILINE), output


@pytest.mark.slow
def test_the_demo_leaves_what_the_default_serving_config_reads(scratch: Path) -> None:
    """`make demo` (`muse demo`) at tiny sizes: it serves every variant and shuts down cleanly,
    leaving the dataset and bundles where `muse serve --config configs/serving/default.toml`
    looks for them."""
    tiny = scratch / "configs" / "data" / "tiny.toml"
    tiny.write_text(dump_toml(apply_overrides({}, [f"{k}={v}" for k, v in TINY_SYNTH.items()], "")))
    tiny_items = scratch / "configs" / "data" / "tiny_items.toml"
    tiny_items.write_text(dump_toml(apply_overrides({}, list(TINY_ITEMS), "")))
    result = subprocess.run(
        [sys.executable, "-m", "muse.cli", "demo", "--no-progress"]
        + ["--set", f'synthetic_config="{tiny.relative_to(scratch)}"']
        + ["--set", 'ranking_overrides=["training.max_epochs=1"]']
        + ["--set", f'item_catalogue_config="{tiny_items.relative_to(scratch)}"']
        + ["--set", f"item_overrides={TINY_ITEM_TRAINING}"]
        + ["--set", 'semantic_ids_overrides=["levels=2", "codebook_size=8"]']
        + ["--set", f"dialogues_overrides={TINY_DIALOGUES}"]
        + ["--set", 'conversational_config="configs/conversational/tiny.toml"']
        + ["--set", f"conversational_overrides={TINY_CONVERSATIONAL}"],
        cwd=scratch,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert _warnings(result.stderr) == [], result.stderr
    summary = result.stdout[result.stdout.index("muse demo summary") :]
    for variant in ("default/default", "muse_vs_din/control", "muse_vs_din/treatment"):
        assert variant in summary, summary
    assert "server shut down cleanly: True" in summary
    # Item-to-item: both encoders' recall side by side, then SimilarItems over gRPC by id and
    # for the same item sent as a new item (its own image and text), which finds itself first.
    assert re.search(r"^  notellm2 +image ", summary, re.MULTILINE), summary
    assert re.search(r"^  text_only +image ", summary, re.MULTILINE), summary
    query = re.search(r"SimilarItems for item (\d+)", summary)
    assert query, summary
    new_item = re.search(r"as a new item .*: top \[(\d+)\] at score ([0-9.]+)", summary)
    assert new_item and new_item.group(1) == query.group(1), summary
    assert float(new_item.group(2)) == pytest.approx(1.0, abs=1e-3)
    # Conversational: one test dialogue played turn by turn through Converse, with the
    # recommendations of each turn, and the four methods' test figures.
    assert "Converse, one test dialogue turn by turn" in summary, summary
    assert re.search(r"^    user 1: .+\n      → .+\(\d\.\d\d\)", summary, re.MULTILINE), summary
    for method in ("generative", "generative_ttr", "dense", "bm25"):
        assert re.search(rf"^  {method} +[0-9.]+ ", summary, re.MULTILINE), summary
    serving = load_config(ServingConfig, scratch / "configs" / "serving" / "default.toml")
    assert (scratch / serving.store.dataset / "manifest.json").is_file()
    assert serving.experiments is not None
    for name in Assigner(load_validated(scratch / serving.experiments)).bundles():
        assert (scratch / serving.bundle_root / name / "manifest.json").is_file()
