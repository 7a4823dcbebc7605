"""The serving benchmarks' child server: ``muse serve``'s host with one chosen service alone."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def serve_one_service(argv: Sequence[str], prog: str, service: Any) -> int:
    """Parse ``--config``/``--set``/``--ready-file`` and host ``service`` until signalled."""
    import asyncio

    from muse.core.config_loader import add_override_argument, load_config
    from serving.json_logging import configure_json_logging
    from serving.server import serve_until_signalled
    from serving.serving_config import ServingConfig

    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--config", type=Path, required=True)
    add_override_argument(parser, "port=0")
    parser.add_argument("--ready-file", type=Path)
    args = parser.parse_args(argv)
    config = load_config(ServingConfig, args.config, args.overrides)
    configure_json_logging(config.log_level)
    asyncio.run(serve_until_signalled(config, [service], args.ready_file))
    return 0
