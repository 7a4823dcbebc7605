"""The stable bucket of a user in a layer: sha256(salt, user id) mod 10,000.

Python's ``hash()`` is salted per process, so it would reshuffle users on every restart. The key
is ``salt + "\\x00" + decimal user id`` (the separator keeps ("ab", 1) and ("a", "b1") apart); the
first 8 bytes of its sha256, big-endian, modulo NUM_BUCKETS give the bucket. The modulo bias is
2^64 mod 10,000 / 2^64 ≈ 3e-16: irrelevant. Other services can reproduce it in one line.
"""

from __future__ import annotations

import hashlib

from serving.experiments.experiment_config import NUM_BUCKETS


def bucket_of(salt: str, user_id: int) -> int:
    """Bucket in ``[0, NUM_BUCKETS)`` of ``user_id`` under ``salt``; identical in every process."""
    digest = hashlib.sha256(f"{salt}\x00{int(user_id)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % NUM_BUCKETS
