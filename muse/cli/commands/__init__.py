"""One module per `muse` subcommand; each defines ``build_parser(parser)`` and ``run(args) -> int``."""
