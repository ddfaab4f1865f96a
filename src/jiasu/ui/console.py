"""The Rich consoles jiasu prints through: one rule for width, wrapping and markup.

- On a terminal, Rich's defaults: lines wrap at the terminal's width.
- Not a terminal (a file, a pipe, a test): a message is never wrapped, so a sentence or a
  path stays on one line for ``grep`` and logs; tables are laid out `PIPED_WIDTH` columns
  wide (wider if ``COLUMNS`` asks for it), whatever the environment's terminal says.
- Markup and emoji codes are off: text from users, paths and install hints such as
  ``pip install 'jiasu[openvino]'`` print exactly as written. Style with `rich.text.Text`
  or ``style=`` instead of ``[bold]…[/]``.
"""

from __future__ import annotations

import os
import sys

from rich.console import Console

PIPED_WIDTH = 160  # columns for tables when the output is not a terminal


def console(*, stderr: bool = False, quiet: bool = False) -> Console:
    """A console for stdout (or stderr with `stderr`); `quiet` silences it."""
    out = Console(
        file=sys.stderr if stderr else sys.stdout,
        quiet=quiet,
        markup=False,
        emoji=False,
    )
    if not out.is_terminal:
        out.soft_wrap = True  # a message is one line however long
        out.width = max(PIPED_WIDTH, _columns_asked())
    return out


def _columns_asked() -> int:
    """COLUMNS when it is a number (a wider table was asked for), else 0."""
    try:
        return int(os.environ.get("COLUMNS", ""))
    except ValueError:
        return 0
