"""`muse serve --config configs/serving/<name>.toml`: host the gRPC services until SIGTERM.

The hosted services are the factories :func:`run` hands to the server: the ranking service, and
the similar-items service when the config has a ``[similar_items]`` table.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from muse.core.config_loader import add_override_argument


def build_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, required=True, help="serving TOML (configs/serving/)"
    )
    add_override_argument(parser, "port=0")
    parser.add_argument(
        "--ready-file",
        type=Path,
        default=None,
        help="write the bound address and ports here (JSON) once serving",
    )


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM or SIGINT; 0 after a clean drain, 1 after an internal error.

    Bad configuration (a missing bundle or dataset, a malformed experiment config, a taken port)
    raises an InputError, which `muse` reports as one line (a JSON record once logging is set up)
    after the half-started server has shut down.
    """
    import asyncio

    from muse.core.config_loader import load_config
    from muse.core.errors import InputError
    from serving.conversational.service import conversational_service
    from serving.item2item.service import similar_items_service
    from serving.json_logging import configure_json_logging
    from serving.ranking.service import ranking_service
    from serving.server import serve_until_signalled
    from serving.serving_config import ServingConfig

    config = load_config(ServingConfig, args.config, args.overrides)
    configure_json_logging(config.log_level)
    services = [ranking_service]
    if config.similar_items is not None:
        services.append(similar_items_service)
    if config.conversational is not None:
        services.append(conversational_service)
    try:
        asyncio.run(serve_until_signalled(config, services, args.ready_file))
    except InputError:
        raise
    except Exception:
        logging.getLogger("muse.serving").exception("server failed")
        return 1
    return 0
