"""Use cases: one session per command, between the command line and the library.

Each module here runs one thing a user asks for (`doctor`, `demo`, `report`, `train`; later
`optimize` and `predict`) from plain values and returns a result. It never parses
arguments and never prints: progress goes through a `log` callable the caller passes
(the CLI passes its stderr console's ``print``), and the CLI renders the result. So a
Python caller, a test or a benchmark runs exactly the session the command runs.

Layers (enforced by import-linter, ``[tool.importlinter]`` in pyproject.toml): `jiasu.cli`
imports `jiasu.app`, which imports the library packages; nothing below imports upward.
"""

from __future__ import annotations

from collections.abc import Callable

# Where a session reports progress: one line at a time (e.g. a console's ``print``).
Log = Callable[[str], None]

__all__ = ["Log"]
