"""Import optional dependencies only where they are needed, with a helpful error."""

from __future__ import annotations

import importlib
from types import ModuleType

from jiasu.core.errors import MissingExtraError


def require(module: str, *, extra: str, purpose: str) -> ModuleType:
    """Import `module`, or raise `MissingExtraError` naming the extra that provides it.

    >>> np = require("numpy", extra="core", purpose="array input")
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(module, extra, purpose) from exc
