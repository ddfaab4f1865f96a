"""Options shared by several commands, defined once."""

from __future__ import annotations

from pathlib import Path

import click

# Workers for --engine: more than this is a typo (an engine runs one process per worker).
MAX_WORKERS = 1024

data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder with the MNIST IDX files (else $JIASU_DATA_DIR, the cache, then a download).",
)
json_option = click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Also write the results as JSON to this file.",
)
html_option = click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write a self-contained HTML report with plots (needs jiasu[report]).",
)
quiet_option = click.option(
    "--quiet", "-q", is_flag=True, help="No progress bars or progress messages."
)


trust_code_option = click.option(
    "--trust-code",
    is_flag=True,
    help="Allow a folder (an artifact or a model directory) whose model can only be rebuilt "
    "by importing its package.module:factory to import it. Importing runs that module's "
    "code; loading a folder never does without this flag. Use it only for a folder you "
    "made or trust.",
)
