"""Where jiasu keeps what it measured about this machine: ``$JIASU_CACHE_DIR``, else
``~/.cache/jiasu`` (the peak rates of `jiasu doctor --measure`, the decisions of
`--recipe auto`). Small JSON files, written atomically; deleting them only costs a
re-measurement."""

from __future__ import annotations

import os
from pathlib import Path

ENV_CACHE_DIR = "JIASU_CACHE_DIR"


def cache_dir() -> Path:
    """``$JIASU_CACHE_DIR``, or ``~/.cache/jiasu`` when it is unset or empty."""
    parent = os.environ.get(ENV_CACHE_DIR)
    return Path(parent) if parent else Path.home() / ".cache" / "jiasu"
