"""The final timing of `optimize`: the fastest few candidates, each alone in its own process.

A screening run times every candidate interleaved in one process, which is quick but
unfair between runtimes (their thread pools disturb each other on a small machine; see
`jiasu.measure.isolated`). So the candidates that screening puts near the top, and the
baseline, are written out as artifacts and timed again the way they will be deployed:
each loaded by `jiasu.load` in a process of its own. The choice is made on these figures.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from jiasu.infer.report import CandidateResult
from jiasu.infer.select import Target

# Screening can misjudge a runtime by up to ~1.6× (measured here), so candidates up to
# twice as slow as the screening leader still get a fair, isolated run.
FINALIST_RATIO = 2.0


def finalists(
    records: Sequence[CandidateResult], baseline: str, target: Target, limit: int
) -> list[str]:
    """The baseline plus up to `limit` accepted candidates within `FINALIST_RATIO` of the
    screening leader, fastest first."""
    scored = []
    for record in records:
        if record.name == baseline or record.verdict != "accepted":
            continue
        if target == "latency" and record.latency_ms_p50:
            scored.append((1.0 / record.latency_ms_p50, record.name))
        elif target == "throughput" and record.samples_per_s:
            scored.append((record.samples_per_s, record.name))
    scored.sort(key=lambda item: -item[0])
    if not scored:
        return [baseline]
    best = scored[0][0]
    close = [name for speed, name in scored if speed * FINALIST_RATIO >= best]
    return [baseline, *close[:limit]]


def timed_predictor(directory: str, inputs: str) -> Callable[[], object]:
    """Worker factory: the artifact in `directory`, loaded by `jiasu.load`, called on the
    batch saved in `inputs` (.npy) — exactly what a user's process would run."""
    from jiasu.infer.artifact import load

    predictor = load(directory)
    batch = np.load(inputs, allow_pickle=False)
    return functools.partial(predictor, batch)


def save_batch(batch: np.ndarray, path: Path) -> str:
    np.save(path, batch, allow_pickle=False)
    return str(path)
