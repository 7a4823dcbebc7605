"""Silences, at their source, the ONNX exporter's notes that are not warnings about our graphs.

Imported by every module that exports a graph; it only adds logging filters (no torch import).
"""

from __future__ import annotations

import logging

# The exporter's op registry names every torchvision op it skips; no graph of ours uses them.
logging.getLogger("torch.onnx._internal.exporter._registration").addFilter(
    lambda record: not record.getMessage().startswith("torchvision is not installed")
)
# onnxscript's optimiser leaves multi-output Split nodes unfolded (still correct) and says so.
logging.getLogger("onnxscript.optimizer._constant_folding").addFilter(
    lambda record: not record.getMessage().startswith("Skipping constant folding for op Split")
)
