"""`jiasu predict`: run an artifact written by `jiasu optimize` on a file of inputs."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

import click
import numpy as np

from jiasu.cli.options import MAX_WORKERS
from jiasu.core.atomic import atomic_path
from jiasu.core.errors import ConfigError, DataError
from jiasu.core.outputs import Output, check_outputs
from jiasu.data.finite import NonFiniteInputWarning


def read_inputs(path: Path) -> np.ndarray:
    """Inputs from .npy (numbers, no pickles) or an IDX file (raw or .gz), as an array.

    uint8 arrays (IDX images, or .npy saved as uint8) are pixels and are scaled to [0, 1],
    as the MNIST loaders do; float arrays are used as they are.
    """
    from jiasu.data.idx import read_idx
    from jiasu.data.npy import read_npy

    if not path.is_file():
        problem = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise DataError(f"input file {path} {problem}; check the path")
    array = read_npy(path) if path.suffix == ".npy" else read_idx(path)
    if array.ndim == 0:
        raise ConfigError(f"{path} holds a single number; pass a batch of inputs (N, ...)")
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    return array


def warn_nonfinite(inputs: np.ndarray, path: Path) -> int:
    """Say on stderr how many inputs hold NaN or infinity; return that number."""
    from jiasu.data.finite import count_nonfinite_rows, nonfinite_message

    bad = count_nonfinite_rows(inputs)
    if bad:
        click.echo(f"warning: {nonfinite_message(bad, len(inputs), str(path))}", err=True)
    return bad


def write_output(path: Path, array: np.ndarray) -> None:
    """Save `array` as .npy atomically (a reader never sees half a file)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, array)


@click.command()
@click.argument("artifact", type=click.Path(path_type=Path))
@click.option(
    "--input",
    "input_path",
    type=click.Path(path_type=Path),
    required=True,
    help="Inputs: .npy of shape (N, C, H, W) or (N, H, W), or an MNIST IDX images file.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write a .npy here (default: print the predicted classes, one per line).",
)
@click.option("--classes", is_flag=True, help="Write predicted classes (int64) instead of logits.")
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
@click.option(
    "--trust-code",
    is_flag=True,
    help="Allow an artifact that can only be rebuilt by importing its package.module:factory "
    "to import it. Importing runs that module's code; loading a folder never does without "
    "this flag. Use it only for a folder you made or trust.",
)
def predict(
    artifact: Path,
    input_path: Path,
    output: Path | None,
    classes: bool,
    engine: str | None,
    workers: int,
    address: str | None,
    batch_size: int,
    trust_code: bool,
) -> None:
    """Run the inference ARTIFACT (from `jiasu optimize --out`) on a file of inputs.

    With --engine the batches are spread over workers of Ray or Spark; the predictions
    are identical to a single process. Loading reads the artifact's files and never
    imports code it names, unless --trust-code.
    """
    from jiasu.infer import load

    if output is not None and output.suffix != ".npy":
        raise ConfigError(f"--output {output} must end in .npy; predictions are saved with numpy")
    sources = {"--input": input_path, "ARTIFACT": artifact}
    check_outputs([Output("--output", output)], inputs=sources)
    predictor = load(artifact, trust_code=trust_code)
    raw = read_inputs(input_path)
    warn_nonfinite(raw, input_path)
    with warnings.catch_warnings():  # said once above, for the whole file
        warnings.simplefilter("ignore", NonFiniteInputWarning)
        inputs = predictor.prepare(raw)  # a wrong shape fails before any work
    if engine is not None:
        from jiasu.engines import predict_distributed
        from jiasu.infer.artifact import PredictorFactory

        logits = predict_distributed(
            PredictorFactory(artifact, trust_code=trust_code), inputs, engine=engine,
            workers=workers, address=address, batch_size=batch_size,
        )  # fmt: skip
    else:
        logits = _predict_here(predictor, inputs, batch_size)
    predicted = logits.argmax(axis=1).astype(np.int64)
    if output is None:
        sys.stdout.write("".join(f"{c}\n" for c in predicted))
        return
    write_output(output, predicted if classes else logits)
    what = "classes" if classes else "logits"
    click.echo(f"wrote {what} for {len(predicted)} inputs to {output} ({predictor.name})", err=True)


def _predict_here(predictor: Any, inputs: np.ndarray, batch_size: int) -> np.ndarray:
    return (
        np.concatenate(
            [
                predictor.predict_numpy(inputs[i : i + batch_size])
                for i in range(0, len(inputs), batch_size)
            ]
        )
        if len(inputs)
        else np.zeros((0, predictor.num_classes), dtype=np.float32)
    )
