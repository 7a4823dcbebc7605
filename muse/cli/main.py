"""The `muse` console entry point: dispatches to one module per subcommand, imported lazily.

Bad input (:class:`muse.core.errors.InputError`: a config, a data file, a checkpoint or model
bundle the user points at) is reported here, for every command, as one line on stderr,
``muse <command>: <file>: <what is wrong>``, with exit code 2; when the command sends its logs to
stderr as JSON (``muse serve``), that line is logged as one JSON record instead. Any other
exception is an internal error and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from muse.core.errors import InputError
from muse.core.thread_waiting import prefer_sleeping_threads

# Subcommand words → (module under muse.cli.commands, one-line help). Modules load only when chosen,
# so `muse --help` stays fast and `muse data synth` never imports torch.
COMMANDS: dict[tuple[str, ...], tuple[str, str]] = {
    ("data", "synth"): ("data_synth", "generate the synthetic lifelong benchmark (Taobao-MM schema)"),
    ("data", "synth-items"): ("data_synth_items", "generate the synthetic multimodal item catalogue (I2I pairs)"),
    ("data", "synth-dialogues"): ("data_synth_dialogues", "generate synthetic dialogues with known targets over a synth-items catalogue"),
    ("data", "prepare"): ("data_prepare", "convert Taobao-MM files or event logs to the internal format"),
    ("train",): ("train", "train a model (ranking or item-to-item) from a TOML config"),
    ("evaluate",): ("evaluate", "evaluate a checkpoint: exact AUC, GAUC, logloss"),
    ("export",): ("export", "export a checkpoint to an ONNX model bundle"),
    ("serve",): ("serve", "start the gRPC server (ranking service)"),
    ("client",): ("client", "score one request against a running server"),
    ("experiments", "validate"): ("experiments_validate", "check an A/B experiment config"),
    ("experiments", "assign"): ("experiments_assign", "print a user's experiment assignments"),
    ("i2i", "train"): ("i2i_train", "train an item encoder (NoteLLM-2 or a baseline) from an item_to_item TOML"),
    ("i2i", "evaluate"): ("i2i_evaluate", "test Recall@k of a trained item encoder by link kind, beside the oracle"),
    ("i2i", "embed"): ("i2i_embed", "embed every catalogue item with a trained item encoder (parquet)"),
    ("i2i", "index"): ("i2i_index", "build the similar-item index bundle (faiss) from item embeddings"),
    ("i2i", "export"): ("i2i_export", "export a trained item encoder to an ONNX bundle (new items in SimilarItems)"),
    ("conv", "ids"): ("conv_ids", "quantise item embeddings into semantic IDs (RQ-KMeans or RQ-VAE) for the retriever"),
    ("conv", "train"): ("conv_train", "train the generative retriever and its TTR encoder from a conversational TOML"),
    ("conv", "evaluate"): ("conv_evaluate", "score a conversational run on its test dialogues, with the beam scaling curve"),
    ("conv", "export"): ("conv_export", "export a conversational run to the bundle the Converse service loads"),
    ("conv", "rewriter"): ("conv_rewriter", "fine-tune the LLM query rewriter (SmolLM2) on synthetic rewrite targets"),
    ("conv", "chat"): ("conv_chat", "chat with a running server's Converse in the terminal (pictures by file path)"),
    ("demo",): ("demo", "run the end-to-end demo on the embedded synthetic data"),
}


def _usage() -> str:
    lines = ["usage: muse <command> [options]", "", "commands:"]
    for words, (_, help_text) in COMMANDS.items():
        lines.append(f"  {' '.join(words):<22} {help_text}")
    lines.append("")
    lines.append("Run `muse <command> --help` for a command's options.")
    return "\n".join(lines)


def _report(line: str) -> None:
    """Write ``line`` to stderr: as a JSON log record if the command logs JSON there, else plain."""
    from serving.json_logging import json_logging_active

    logger = logging.getLogger("muse.cli")
    if json_logging_active() and logger.isEnabledFor(logging.ERROR):
        logger.error(line)
    else:
        print(line, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    prefer_sleeping_threads()  # before any command imports torch
    for words in sorted(COMMANDS, key=len, reverse=True):
        if tuple(argv[: len(words)]) == words:
            module_name, help_text = COMMANDS[words]
            module = importlib.import_module(f"muse.cli.commands.{module_name}")
            parser = argparse.ArgumentParser(prog=f"muse {' '.join(words)}", description=help_text)
            module.build_parser(parser)
            args = parser.parse_args(argv[len(words) :])
            try:
                return int(module.run(args) or 0)
            except InputError as error:
                _report(f"muse {' '.join(words)}: {error.one_line()}")
                return 2
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    print(f"muse: unknown command {' '.join(argv[:2])!r}\n\n{_usage()}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
