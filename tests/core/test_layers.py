"""The layers of src/jiasu hold: no package imports one above it, only the CLI imports click.

The contracts are in pyproject.toml (``[tool.importlinter]``); `make check` runs the same
``lint-imports``. Here it also runs in the test suite, on the jiasu that Python imports.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_import_contracts_are_kept() -> None:
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if lint_imports is None:
        pytest.skip("import-linter is not installed (it comes with jiasu[dev])")
    result = subprocess.run(
        [lint_imports, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "layers: cli > app | serve > library > core KEPT" in result.stdout
    assert "only the CLI imports click KEPT" in result.stdout
