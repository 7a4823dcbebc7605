"""``python -m muse.cli``: the same entry point as the ``muse`` console script."""

from muse.cli.main import main

raise SystemExit(main())
