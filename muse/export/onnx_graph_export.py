"""One torch → ONNX export for every task's graph: dynamo exporter, eval mode, quiet.

The graph runs in eval mode for the export and every submodule gets its own mode back after; the
exporter's notes that are not about our graphs are filtered at their source.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

import muse.core.onnx_exporter_logging  # noqa: F401 (silences exporter notes)


def export_graph(
    graph: nn.Module,
    arguments: tuple[torch.Tensor, ...],
    path: str | Path,
    input_names: Sequence[str],
    output_names: Sequence[str],
    dynamic_shapes: dict[str, Any],
    opset_version: int | None = None,
) -> Path:
    """Export ``graph(*arguments)`` to ``path`` with the named inputs, outputs and dynamic axes."""
    path = Path(path)
    modes = {module: module.training for module in graph.modules()}
    graph.eval()
    try:
        with warnings.catch_warnings():
            # torch's own decompositions trip its pytree LeafSpec deprecation: nothing of ours.
            warnings.filterwarnings(
                "ignore", r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning
            )
            # Inputs share one Dim per axis on purpose; the exporter notes it keeps one name each.
            warnings.filterwarnings("ignore", r"# The axis name: \w+ will not be used", UserWarning)
            torch.onnx.export(
                graph,
                arguments,
                str(path),
                dynamo=True,
                input_names=list(input_names),
                output_names=list(output_names),
                dynamic_shapes=dynamic_shapes,
                verbose=False,  # no "[torch.onnx] ..." progress lines on stdout
                opset_version=opset_version,  # None: the exporter's default
            )
    finally:
        for module, training in modes.items():
            module.training = training
    return path
