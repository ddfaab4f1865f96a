"""Where a long run's wall time went: named phases, timed as they happen.

>>> clock = PhaseClock()
>>> with clock.phase("export"):
...     pass
>>> list(clock.seconds())
['export', 'total']
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator


class PhaseClock:
    """Wall seconds per named phase (a phase entered twice adds up), and the total since
    the clock was made."""

    def __init__(self) -> None:
        self._start = time.perf_counter()
        self._phases: dict[str, float] = {}

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self._phases[name] = self._phases.get(name, 0.0) + time.perf_counter() - start

    def elapsed(self) -> float:
        """Seconds since the clock was made."""
        return time.perf_counter() - self._start

    def seconds(self) -> dict[str, float]:
        """Each phase's seconds in the order first entered, then ``total``."""
        return {**self._phases, "total": self.elapsed()}
