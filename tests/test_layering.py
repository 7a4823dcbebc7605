"""Layers point one way: core ← features ← muse (search, tasks, training, export) ← serving ← cli.

The static test walks every import statement of every source file (lazy imports inside functions
included) and fails on an arrow that points back up. The runtime tests check what the static one
cannot: that importing the torch-free layers really loads no torch.
"""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PROJECT_PACKAGES = ("muse", "features", "serving", "tests", "benchmarks")

# Each layer and the project modules it may import (by dotted prefix). Later rules win ties by
# being more specific: a module belongs to the layer of its longest matching prefix.
LAYERS: dict[str, tuple[str, ...]] = {
    "muse.core": ("muse.core",),
    "features": ("muse.core", "features"),
    "muse.search": ("muse.core", "features", "muse.search"),
    "muse.export": ("muse.core", "features", "muse.search", "muse.export"),
    "muse.training": ("muse.core", "features", "muse.search", "muse.training"),
    "muse.ranking": (
        "muse.core",
        "features",
        "muse.search",
        "muse.export",
        "muse.training",
        "muse.ranking",
    ),
    "muse.item2item": (
        "muse.core",
        "features",
        "muse.search",
        "muse.export",
        "muse.training",
        "muse.item2item",
    ),
    # The conversational task uses NoteLLM-2's encoders (item2item), never ranking.
    "muse.conversational": (
        "muse.core",
        "features",
        "muse.search",
        "muse.export",
        "muse.training",
        "muse.item2item",
        "muse.conversational",
    ),
    "serving": (
        "muse.core",
        "features",
        "muse.search",
        "muse.export",
        "muse.ranking",
        "muse.item2item",
        "muse.conversational",
        "serving",
    ),
    "muse.cli": PROJECT_PACKAGES[:3],
    "muse": ("muse",),  # the bare package's __init__
}
# Training code, which serving must never load (a task's own training lives in <task>.training).
TRAINING_PARTS = ("training",)


def _layer_of(module: str) -> str:
    matches = [layer for layer in LAYERS if module == layer or module.startswith(layer + ".")]
    assert matches, f"{module} belongs to no layer: add it to LAYERS"
    return max(matches, key=len)


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: pathlib.Path) -> list[tuple[int, str]]:
    """(line, dotted module) of every project import in ``path``, relative ones resolved."""
    tree = ast.parse(path.read_text(), str(path))
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            names = [module]
        else:
            continue
        found += [(node.lineno, name) for name in names if name.split(".")[0] in PROJECT_PACKAGES]
    return found


def _source_files() -> list[pathlib.Path]:
    files = []
    for package in ("muse", "features", "serving"):
        files += [path for path in (ROOT / package).rglob("*.py") if "proto_gen" not in path.parts]
    return sorted(files)


def test_every_import_points_down_the_layers() -> None:
    offenders = []
    for path in _source_files():
        layer = _layer_of(_module_name(path))
        allowed = LAYERS[layer]
        for line, module in _imports(path):
            where = f"{path.relative_to(ROOT)}:{line} imports {module}"
            if not any(module == prefix or module.startswith(prefix + ".") for prefix in allowed):
                offenders.append(f"{where} ({layer} may import only {', '.join(allowed)})")
            elif layer == "serving" and any(part in TRAINING_PARTS for part in module.split(".")):
                offenders.append(f"{where} (serving never imports training code)")
    assert offenders == []


def test_the_walker_resolves_absolute_and_relative_imports() -> None:
    # Without this the layering test could pass by seeing no imports at all.
    probe = ROOT / "features" / "_layering_probe.py"
    probe.write_text("from muse.training import trainer\nfrom .vocabulary import Vocabulary\n")
    try:
        assert [module for _, module in _imports(probe)] == [
            "muse.training",
            "features.vocabulary",
        ]
        assert _layer_of(_module_name(probe)) == "features"
    finally:
        probe.unlink()


@pytest.mark.parametrize("package", ["muse.core", "features"])
def test_torch_free_layers_load_no_torch(package: str) -> None:
    code = (
        "import sys, pkgutil, importlib; "
        f"root = importlib.import_module({package!r}); "
        f"[importlib.import_module({package!r} + '.' + m.name) "
        "for m in pkgutil.iter_modules(root.__path__)]; "
        "print('torch' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT
    )
    assert result.stdout.strip() == "False"


def test_serving_never_loads_training_code() -> None:
    code = (
        "import sys, pkgutil, importlib, serving; "
        "[importlib.import_module(m.name) for m in pkgutil.walk_packages(serving.__path__, "
        "'serving.') if 'proto_gen' not in m.name]; "
        "print('\\n'.join(sorted(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT
    )
    loaded = [name for name in result.stdout.split() if name.split(".")[0] in PROJECT_PACKAGES]
    assert not [name for name in loaded if "training" in name.split(".")]
    assert "serving.ranking.engine" in loaded  # the walk did import the servers' modules
    assert not [name for name in loaded if name.startswith("muse.cli")]


def test_no_library_code_imports_tests_or_benchmarks() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in _source_files()
        for line, module in _imports(path)
        if module.split(".")[0] in ("tests", "benchmarks")
    ]
    assert offenders == []
