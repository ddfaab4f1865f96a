"""A user's own module for tests: written to a folder and importable from it, as a user's
module is (a folder on sys.path, which jiasu tells an engine's workers about)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def user_module(folder: Path, name: str, source: str) -> Iterator[str]:
    """`source` as module `name` in `folder` (created), on sys.path for the block; yields
    `name`. Afterwards the folder leaves sys.path and the module is forgotten."""
    folder.mkdir(parents=True)
    (folder / f"{name}.py").write_text(source)
    sys.path.insert(0, str(folder))
    try:
        yield name
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop(name, None)
