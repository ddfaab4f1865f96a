"""Rich rendering of comparisons."""

from __future__ import annotations

from rich.console import Console

from jiasu.measure import Comparison, compare, render_comparison
from jiasu.measure.benchmark import TABLE_COLUMNS, CaseResult, Measurement


def _comparison() -> Comparison:
    base = Measurement.from_seconds("base", (0.010, 0.010), items_per_call=4)
    fast = Measurement.from_seconds("fast", (0.005, 0.005), items_per_call=4)
    slow = Measurement.from_seconds("slow", (0.020, 0.020), items_per_call=4)
    return Comparison(
        baseline="base",
        results={
            "base": CaseResult("base", base, speedup=1.0),
            "fast": CaseResult("fast", fast, speedup=2.0),
            "slow": CaseResult("slow", slow, speedup=0.5),
            "bad": CaseResult("bad", None, error="RuntimeError: CUDA out of memory"),
        },
        interleaved=True,
    )


def test_table_structure_and_styles() -> None:
    table = render_comparison(_comparison(), "demo")
    assert table.title == "demo"
    assert [c.header for c in table.columns] == list(TABLE_COLUMNS)
    assert table.row_count == 4
    styles = [row.style for row in table.rows]
    assert styles == ["bold", "green", "red", "red"]


def test_rendered_text_contains_error_and_numbers() -> None:
    console = Console(record=True, width=160)
    console.print(render_comparison(_comparison(), "demo"))
    text = console.export_text()
    assert "failed: RuntimeError: CUDA out of memory" in text
    assert "10.00 ms" in text and "2.00×" in text and "0.50×" in text


def test_render_real_comparison() -> None:
    c = compare({"a": lambda: None, "b": lambda: None}, baseline="a", repeats=2)
    assert render_comparison(c, "t").row_count == 2
