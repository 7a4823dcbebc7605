"""GSU search benchmark (issue 4): ours warm/cold against tuned faiss.knn, naive torch and numpy.

    .venv/bin/python benchmarks/gsu.py [--quick] [--json] [--set repeats=30] [--output-dir DIR]

Same as `muse bench gsu`; the logic lives in muse/search/benchmark.py. Writes
docs/results/gsu.md and docs/results/gsu.png.
"""

from __future__ import annotations

import sys

from muse.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main(["bench", "gsu", *sys.argv[1:]]))
