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
    from jiasu.app.report import combine_results, publish_report
    from jiasu.report.terminal import render_report

    built = combine_results(results, title=title, html_path=html_path, json_path=json_path)
    make_console().print(*render_report(built))  # piped: not cut to 80 columns
    err = make_console(stderr=True, quiet=quiet)
    publish_report(
        built, html_path=html_path, json_path=json_path, tensorboard_dir=tensorboard_dir,
        mlflow_uri=mlflow_uri, log=err.print,
    )  # fmt: skip
