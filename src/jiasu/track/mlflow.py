"""Log a report to MLflow: one MLflow run per report run, with params, metrics, artefacts.

Params: the run's kind, baseline, chosen entry, budget and where it ran. Metrics:
``<entry>.<metric>`` for each headline figure, and ``<entry>.curve.<metric>`` per epoch.
Artefacts: ``report.json`` and, when matplotlib is installed, ``report.html``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from jiasu.core.extras import require
from jiasu.report import as_report
from jiasu.report.model import Report, Run
from jiasu.track.common import (
    CURVE_METRICS,
    TrackingError,
    run_start_s,
    safe_name,
    summary_metrics,
)

EXPERIMENT = "jiasu"


def _params(run: Run) -> dict[str, str]:
    env = run.environment
    values = {
        "kind": run.kind,
        "title": run.title,
        "baseline": run.baseline,
        "chosen": run.chosen,
        "accuracy_budget_points": run.accuracy_budget_points,
        "entries": ", ".join(e.name for e in run.entries),
        "source": run.source,
        "torch": env.get("torch"),
        "device": env.get("device"),
        "cpu_model": env.get("cpu_model"),
        "torch_threads": env.get("torch_threads"),
    }
    return {k: str(v)[:500] for k, v in values.items() if v not in (None, "")}


def _html(single: Report) -> str | None:
    try:
        from jiasu.report.html import render_html

        return render_html(single)
    except ImportError:  # no matplotlib: the JSON artefact still goes
        return None


def to_mlflow(
    report: Report | Run | Mapping[str, Any],
    tracking_uri: str,
    *,
    experiment: str = EXPERIMENT,
) -> list[str]:
    """Log each run of `report` as an MLflow run in `experiment`; returns the run ids.

    MLflow 3 refuses a plain folder store (``file:./mlruns``) unless the environment sets
    ``MLFLOW_ALLOW_FILE_STORE=true``; a server URI or ``sqlite:///mlflow.db`` (full
    ``mlflow``) work as they are. The tracker's own refusals become a `TrackingError`.
    """
    mlflow = require("mlflow", extra="track", purpose="logging to MLflow")
    from mlflow.exceptions import MlflowException

    try:
        return _log(mlflow, as_report(report), tracking_uri, experiment)
    except MlflowException as exc:
        first = str(exc).strip().split(". ")[0]
        raise TrackingError(f"MLflow at {tracking_uri!r} refused the report: {first}") from exc


def _log(mlflow: Any, built: Report, tracking_uri: str, experiment: str) -> list[str]:
    from mlflow.entities import Metric, Param

    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    run_ids = []
    for run in built.runs:
        start_ms = int(run_start_s(run, built) * 1000)
        created = client.create_run(
            experiment_id,
            start_time=start_ms,
            run_name=f"{run.kind}: {run.chosen or run.baseline}",
            tags={"jiasu.kind": run.kind, "jiasu.source": run.source},
        )
        run_id = created.info.run_id
        metrics = []
        for entry in run.entries:
            key = safe_name(entry.name)
            for name, value in summary_metrics(entry, built).items():
                metrics.append(Metric(f"{key}.{name}", value, start_ms, 0))
            for point in entry.curve:
                at_ms = start_ms + int(point.wall_s * 1000)
                for name in CURVE_METRICS:
                    value = getattr(point, name)
                    if value is not None:
                        metrics.append(Metric(f"{key}.curve.{name}", value, at_ms, point.epoch))
        params = [Param(k, v) for k, v in _params(run).items()]
        for i in range(0, max(len(metrics), 1), 1000):  # MLflow takes 1000 metrics a batch
            client.log_batch(run_id, metrics=metrics[i : i + 1000], params=params if i == 0 else [])
        single = Report((run,), title=built.title, created=built.created, peak=built.peak)
        client.log_text(run_id, json.dumps(single.to_dict(), indent=2), "report.json")
        html = _html(single)
        if html is not None:
            client.log_text(run_id, html, "report.html")
        client.set_terminated(run_id, end_time=int(time.time() * 1000))
        run_ids.append(run_id)
    return run_ids
