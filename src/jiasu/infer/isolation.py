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
from jiasu.infer.select import Target, speed

PER_BACKEND = 3  # finalists from each runtime
# A candidate screened this many times slower than the fastest accepted one is no finalist:
# the most screening has mis-timed a runtime here is 2.3x (see `finalists`), and each slow
# finalist costs the search most (BERT-base at batch 32: eager, ONNX Runtime and
# torch-optimized at 2.4-2.9 s a call, 7-9x behind OpenVINO int8, timed alone for minutes).
FAR_BEHIND = 4.0
# ... and this many times where the screening's calls were slow (`SLOW_CALL_S`): it is then
# one warm call of each candidate in its own verification, seconds long and with no other
# runtime's pool spinning beside it, so the mis-timing above does not arise; and each such
# finalist costs most (ViT-B/16 at batch 32 with data: eager, torch-optimized, ONNX Runtime
# and OpenVINO fp32 2.1-2.6x behind OpenVINO bf16 at 6-7 s a call, ~80 s of a 327 s search).
FAR_BEHIND_SLOW = 2.0


def finalists(
    records: Sequence[CandidateResult],
    baseline: str,
    target: Target,
    limit: int = 8,
    far_behind: float = FAR_BEHIND,
) -> list[str]:
    """The baseline plus the `PER_BACKEND` fastest accepted candidates of each backend by
    screening, at most `limit` of them, fastest first; none `far_behind` the fastest.

    Finalists are drawn from every runtime rather than from the top of one list because
    screening is unfair *between* runtimes: on the small CNN at batch 256 it timed
    OpenVINO bf16 at 3.50 ms, more than twice the eventual pick's 1.44 ms, and alone it
    took 1.51–1.56 ms (benchmarks/RESULTS.md, inference).
    """
    scored: list[tuple[float, str, str]] = []
    for record in records:
        fast = speed(record.trial(), target)
        if record.name != baseline and record.verdict == "accepted" and fast is not None:
            scored.append((fast, record.name, record.candidate.backend))
    scored.sort(key=lambda item: -item[0])
    if scored:
        scored = [item for item in scored if item[0] * far_behind >= scored[0][0]]
    taken: dict[str, int] = {}
    chosen: list[str] = []
    for _, name, backend in scored:
        if taken.get(backend, 0) < PER_BACKEND and len(chosen) < limit:
            taken[backend] = taken.get(backend, 0) + 1
            chosen.append(name)
    return [baseline, *chosen]


def timed_predictor(directory: str, inputs: str, trust_code: bool = False) -> Callable[[], object]:
    """Worker factory: the artifact in `directory`, loaded by `jiasu.load`, called on the
    batch saved in `inputs` (.npz, one array per input in order) — exactly what a
    user's process would run.

    `trust_code` is set only by the optimize run that wrote the artifact, for a model the
    user gave as their own ``package.module:factory`` in that run."""
    from jiasu.infer.artifact import load

    predictor = load(directory, trust_code=trust_code)
    with np.load(inputs, allow_pickle=False) as saved:
        batch = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    return functools.partial(predictor, *batch)


def save_batch(batch: Sequence[np.ndarray], path: Path) -> str:
    """Save one (B, ...) array per input, in order, as an .npz file; return its path."""
    np.savez(path, *batch)
    return str(path)
