"""How idle OpenMP threads wait: sleep at once instead of spinning, unless the user chose.

libgomp's default lets a thread that finished its share of a parallel region spin for a while
before sleeping. On a machine to itself that saves a wake-up; beside any other CPU-bound process
the spinning threads take the cores the working ones need, and two-thread training ran 2.7-2.9×
slower beside one busy-loop process (1.35× with no spinning), at about the same speed alone
(benchmarks/training_throughput.py --neighbours 0,1). libgomp reads its settings once, when it
loads, so this must run before torch is imported. Torch-free.
"""

from __future__ import annotations

import os
import sys

# Spin iterations before an idle thread sleeps; 0 sleeps at once (OMP_WAIT_POLICY=PASSIVE also
# yields inside barriers, which cost about a sixth of the step alone).
SPIN_COUNT = "0"
USER_SETTINGS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def prefer_sleeping_threads() -> bool:
    """Set GOMP_SPINCOUNT=0 unless the user set a wait policy; True when it took effect.

    It takes effect only if torch (hence libgomp) is not yet loaded in this process.
    """
    if any(name in os.environ for name in USER_SETTINGS) or "torch" in sys.modules:
        return False
    os.environ["GOMP_SPINCOUNT"] = SPIN_COUNT
    return True
