"""Run under torchrun by test_distributed.py: trains the tiny config, writes this rank's view.

Each rank writes rank<r>.json with its test metrics (computed from the all-gathered scores) and
a fingerprint of its dense (data-parallel) weights, so the test can check the ranks agree.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from muse.ranking.training import train  # noqa: E402
from tests.training.conftest import tiny_config  # noqa: E402


def main() -> None:
    dataset, out = Path(sys.argv[1]), Path(sys.argv[2])
    result = train(
        tiny_config(dataset, out / "run", batch_size=32, max_epochs=2, checkpoint_every_steps=7),
        progress=False,
    )
    digest = hashlib.sha256()
    for name, parameter in sorted(result.model.named_parameters()):
        if not name.startswith("sparse."):  # ID tables are sharded: each rank holds different rows
            digest.update(name.encode())
            digest.update(parameter.detach().cpu().numpy().tobytes())
    rank = int(os.environ["RANK"])
    view = {
        "rank": rank,
        "world_size": int(os.environ["WORLD_SIZE"]),
        "test": result.test.as_dict(),
        "epochs": result.epochs,
        "steps": result.steps,
        "dense_sha256": digest.hexdigest(),
        "sharded_model": type(result.model).__name__,
    }
    (out / f"rank{rank}.json").write_text(json.dumps(view))


if __name__ == "__main__":
    main()
