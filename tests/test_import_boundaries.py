"""Layering: features never loads torch; serving never loads training code; nothing imports tests."""

from __future__ import annotations

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _modules_after_import(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sorted(sys.modules)))"
    output = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT)
    return set(output.stdout.split())


def test_features_never_imports_torch() -> None:
    modules = _modules_after_import(
        "import features, features.dataset, features.vocabulary, features.atomic_write; "
        "import pkgutil, importlib; "
        "[importlib.import_module('features.' + m.name) for m in pkgutil.iter_modules(features.__path__)]"
    )
    assert "torch" not in modules


def test_serving_never_imports_training_code() -> None:
    modules = _modules_after_import(
        "import serving, pkgutil, importlib; "
        "[importlib.import_module('serving.' + m.name) for m in pkgutil.iter_modules(serving.__path__) "
        "if m.name != 'proto_gen']"
    )
    assert not any(name == "muse.training" or name.startswith("muse.training.") for name in modules)


def test_no_library_code_imports_tests() -> None:
    offenders = []
    for package in ("muse", "features", "serving", "benchmarks"):
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text()
            if "from tests" in text or "import tests" in text:
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
