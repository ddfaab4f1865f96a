"""`jiasu predict`: run an artifact written by `jiasu optimize` on a file of inputs."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from jiasu.cli.options import MAX_WORKERS, trust_code_option

INPUT_HELP = (
    "Inputs in the artifact's signature: .npz (one array per input, by name; 'labels' "
    "ignored), .npy, .csv or .parquet (numeric feature columns), an MNIST IDX file, or a "
    "folder of images (root/<class>/*.png or a flat folder; converted and resized to the "
    "model's channels, height and width)."
)


@click.command()
@click.argument("artifact", type=click.Path(path_type=Path))
@click.option(
    "--input", "input_path", type=click.Path(path_type=Path), required=True, help=INPUT_HELP
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the outputs to this .npy or .csv (one row per input). Default: print the "
    "predicted classes, one per line (a classifier only).",
)
@click.option(
    "--classes",
    is_flag=True,
    help="With --output: write the predicted classes (int64; a classifier only) instead of "
    "the outputs.",
)
@click.option(
    "--label-column",
    default=None,
    metavar="NAME",
    help="The column of a .csv/.parquet --input that holds labels, not a feature.",
)
@click.option(
    "--engine",
    type=click.Choice(["ray", "spark"]),
    default=None,
    help="Spread the batches over workers: Ray Data map_batches or Spark predict_batch_udf.",
)
@click.option(
    "--workers", type=click.IntRange(min=1, max=MAX_WORKERS), default=2, show_default=True
)
@click.option("--address", default=None, help="Cluster to join for --engine (default: local).")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=1024,
    show_default=True,
    help="Inputs per call of the runtime.",
)
@trust_code_option
def predict(
    artifact: Path,
    input_path: Path,
    output: Path | None,
    classes: bool,
    label_column: str | None,
    engine: str | None,
    workers: int,
    address: str | None,
    batch_size: int,
    trust_code: bool,
) -> None:
    """Run the inference ARTIFACT (from `jiasu optimize --out`) on a file of inputs.

    The inputs must match the signature stored in the artifact (names, dtypes, shapes);
    a mismatch is one sentence saying what the model takes. With --engine the batches
    are spread over workers of Ray or Spark; the predictions are identical to a single
    process. Loading reads the artifact's files and never imports code it names, unless
    --trust-code.

        jiasu predict art/ --input rows.csv --label-column y --output out.csv
    """
    from jiasu.app.predict import predict_file

    def warn(message: str) -> None:
        click.echo(message, err=True)

    result = predict_file(
        artifact, input_path, output=output, classes=classes, label_column=label_column,
        engine=engine, workers=workers, address=address, batch_size=batch_size,
        trust_code=trust_code, log=warn,
    )  # fmt: skip
    if result.written is None:
        assert result.classes is not None
        sys.stdout.write("".join(f"{c}\n" for c in result.classes))
        return
    what = "classes" if classes else "outputs"
    click.echo(
        f"wrote {what} for {len(result.data)} inputs to {result.written} ({result.candidate})",
        err=True,
    )
