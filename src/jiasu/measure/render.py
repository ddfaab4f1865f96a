"""Render a `Comparison` as a rich table.

>>> from rich.console import Console
>>> from jiasu.measure.benchmark import compare
>>> c = compare({"eager": lambda: None, "fast": lambda: None}, baseline="eager", repeats=3)
>>> Console(width=120).print(render_comparison(c, "demo"))  # doctest: +SKIP
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from jiasu.measure.benchmark import TABLE_COLUMNS, Comparison


def render_comparison(comparison: Comparison, title: str = "Benchmark") -> Table:
    """A table with one row per case: median, p10–p90, items/s and speedup over baseline.

    The baseline row is bold, cases slower than the baseline are red, faster ones green,
    and failed cases show their error in red.
    """
    table = Table(title=title)
    for i, column in enumerate(TABLE_COLUMNS):
        table.add_column(column, justify="left" if i == 0 else "right", no_wrap=i < 4)
    rows = comparison.table_rows()
    for (name, result), row in zip(comparison.results.items(), rows, strict=True):
        if name == comparison.baseline:
            style = "bold"
        elif not result.ok or (result.speedup is not None and result.speedup < 1):
            style = "red"
        elif result.speedup is not None and result.speedup > 1:
            style = "green"
        else:
            style = ""
        table.add_row(*(Text(cell) for cell in row), style=style)
    return table
