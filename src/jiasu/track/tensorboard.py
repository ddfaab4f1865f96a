"""Write a report to TensorBoard: per entry, training curves and summary scalars.

Each entry of each run gets its own folder (``<logdir>/<NN>-<kind>/<entry>``), so
TensorBoard overlays baseline and accelerated on the same charts. Curve points carry the
real wall time (run start + seconds since start), so TensorBoard's "relative" axis shows
accuracy against wall time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jiasu.core.extras import require
from jiasu.report import as_report
from jiasu.report.model import Report, Run
from jiasu.track.common import CURVE_METRICS, run_start_s, safe_name, summary_metrics


def to_tensorboard(
    report: Report | Run | Mapping[str, Any], logdir: str | os.PathLike[str]
) -> list[Path]:
    """Log every run's entries under `logdir`; returns the event folders written.

    Scalars: ``curve/<metric>`` per epoch (accuracy, loss, samples_per_s, lr) and
    ``summary/<metric>`` at step 0 (speedup, accuracy, latency, share of peak...).
    """
    require("tensorboard", extra="track", purpose="logging to TensorBoard")
    from torch.utils.tensorboard import SummaryWriter

    built = as_report(report)
    folders = []
    for index, run in enumerate(built.runs):
        start = run_start_s(run, built)
        for entry in run.entries:
            folder = Path(logdir) / f"{index:02d}-{run.kind}" / safe_name(entry.name)
            writer = SummaryWriter(log_dir=str(folder))
            try:
                for point in entry.curve:
                    for metric in CURVE_METRICS:
                        value = getattr(point, metric)
                        if value is not None:
                            writer.add_scalar(
                                f"curve/{metric}", value, point.epoch, walltime=start + point.wall_s
                            )
                for metric, value in summary_metrics(entry, built).items():
                    writer.add_scalar(f"summary/{metric}", value, 0, walltime=start)
                writer.add_text("run", f"{run.title} — {entry.name}: {entry.label}", 0)
            finally:
                writer.close()
            folders.append(folder)
    return folders
