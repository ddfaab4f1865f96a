"""`jiasu report`: one report from result files — tables here, and HTML, JSON, trackers."""

from __future__ import annotations

from pathlib import Path

import click

from jiasu.cli.options import quiet_option
from jiasu.ui.console import console as make_console


@click.command()
@click.argument("results", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    "html_path",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Write a self-contained HTML page with plots here (needs jiasu[report]).",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Write the combined report as JSON (schema: docs/report.md).",
)
@click.option("--title", default="jiasu report", show_default=True, help="Title of the report.")
@click.option(
    "--tensorboard",
    "tensorboard_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Also log the runs to TensorBoard in this folder (needs jiasu[track]).",
)
@click.option(
    "--mlflow",
    "mlflow_uri",
    default=None,
    metavar="URI",
    help="Also log the runs to MLflow at this tracking URI (needs jiasu[track]).",
)
@quiet_option
def report(
    results: tuple[Path, ...],
    html_path: Path | None,
    json_path: Path | None,
    title: str,
    tensorboard_dir: Path | None,
    mlflow_uri: str | None,
    quiet: bool,
) -> None:
    """Combine RESULTS (JSON files from demo, train, optimize or a benchmark) into one report.

    Prints the tables; with -o also writes an HTML page with plots that needs no network:

        jiasu report demo.json optimize/report.json -o report.html
    """
    from jiasu.core.outputs import Output, check_outputs
    from jiasu.report import build_report, load_runs, write_html, write_json
    from jiasu.report.terminal import render_report

    outputs = [Output("-o/--output", html_path), Output("--json", json_path)]
    check_outputs(outputs, inputs=[("RESULTS", path) for path in results])
    built = build_report(load_runs(results), title=title)
    make_console().print(*render_report(built))  # piped: not cut to 80 columns
    err = make_console(stderr=True, quiet=quiet)
    if html_path is not None:
        write_html(built, html_path)
        err.print(f"wrote {html_path}")
    if json_path is not None:
        write_json(built, json_path)
        err.print(f"wrote {json_path}")
    if tensorboard_dir is not None:
        from jiasu.track import to_tensorboard

        to_tensorboard(built, tensorboard_dir)
        err.print(f"logged to TensorBoard in {tensorboard_dir}")
    if mlflow_uri is not None:
        from jiasu.track import to_mlflow

        ids = to_mlflow(built, mlflow_uri)
        err.print(f"logged {len(ids)} run(s) to MLflow at {mlflow_uri}")
