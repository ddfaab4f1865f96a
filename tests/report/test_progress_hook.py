"""Benchmark repeats can drive a progress bar through `compare(progress=...)`."""

from __future__ import annotations

from jiasu.measure import compare
from jiasu.ui.progress import TaskProgress


def test_compare_reports_every_timed_call() -> None:
    seen: list[str] = []

    def broken() -> None:
        raise RuntimeError("no")

    with TaskProgress(enabled=False) as bar:
        bar.start("benchmark", total=3 * 3)

        def tick(name: str) -> None:
            seen.append(name)
            bar.advance(status=name)

        compare(
            {"a": lambda: None, "b": lambda: None, "c": broken},
            baseline="a",
            repeats=3,
            warmup=0,
            progress=tick,
        )
    assert sorted(seen) == ["a", "a", "a", "b", "b", "b"]  # the failing case never ticks
