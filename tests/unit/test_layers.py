"""The architecture in the tree: api <- builders, observe <- reconcile <- kinds."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_hold() -> None:
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint_imports is not None
    result = subprocess.run([lint_imports], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_operator_folder_is_not_a_package() -> None:
    # An importable top-level `operator` would shadow the standard library's module.
    assert not (ROOT / "operator/__init__.py").exists()
    import operator

    assert hasattr(operator, "itemgetter")
