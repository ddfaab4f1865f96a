"""Keras integration tests: real Keras 3 on the torch backend (skipped without the extra)."""

from __future__ import annotations

import importlib.util

if importlib.util.find_spec("keras") is None:  # the keras extra is not installed
    collect_ignore_glob = ["test_keras_*.py"]
