"""The `jiasu report` session: result files combined into one report, then published.

`combine_results` checks every output path and reads the results (one sentence for a file
that is not a jiasu result); `publish_report` writes the HTML and JSON and logs the runs to
TensorBoard and MLflow, where asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from jiasu.app import Log
from jiasu.report.model import Report


def combine_results(
    results: Sequence[Path],
    *,
    title: str = "jiasu report",
    html_path: Path | None = None,
    json_path: Path | None = None,
) -> Report:
    """One report from `results` (JSON files from demo, train, optimize or a benchmark).

    The output paths are checked first, so a report that could not be written is refused
    before any file is read.
    """
    from jiasu.core.outputs import Output, check_outputs
    from jiasu.report import build_report, load_runs

    outputs = [Output("-o/--output", html_path), Output("--json", json_path)]
    check_outputs(outputs, inputs=[("RESULTS", path) for path in results])
    return build_report(load_runs(results), title=title)


def publish_report(
    report: Report,
    *,
    html_path: Path | None = None,
    json_path: Path | None = None,
    tensorboard_dir: Path | None = None,
    mlflow_uri: str | None = None,
    log: Log | None = None,
) -> None:
    """Write `report` as HTML and JSON and log it to the trackers asked for; `log` each."""
    from jiasu.report import write_html, write_json

    def say(message: str) -> None:
        if log is not None:
            log(message)

    if html_path is not None:
        write_html(report, html_path)
        say(f"wrote {html_path}")
    if json_path is not None:
        write_json(report, json_path)
        say(f"wrote {json_path}")
    if tensorboard_dir is not None:
        from jiasu.track import to_tensorboard

        to_tensorboard(report, tensorboard_dir)
        say(f"logged to TensorBoard in {tensorboard_dir}")
    if mlflow_uri is not None:
        from jiasu.track import to_mlflow

        ids = to_mlflow(report, mlflow_uri)
        say(f"logged {len(ids)} run(s) to MLflow at {mlflow_uri}")
