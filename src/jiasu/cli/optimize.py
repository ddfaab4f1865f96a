"""`jiasu optimize`: the fastest inference artifact within an accuracy budget, with evidence."""

from __future__ import annotations

import dataclasses
import math
import tempfile
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from jiasu.cli.options import data_dir_option, html_option, json_option, quiet_option
from jiasu.core.errors import ConfigError
from jiasu.hardware.threads import max_threads
from jiasu.infer.backends import BACKENDS
from jiasu.infer.backends.base import ModelSource
from jiasu.ui.console import console as make_console

MNIST_SHAPE = (1, 28, 28)


def _shape(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        shape = ()
    if not shape or any(d < 1 for d in shape):
        raise ConfigError(f"--input-shape {text!r} is invalid; write it as C,H,W, e.g. 1,28,28")
    return shape


def _for_mnist(source: ModelSource, scratch: Path, err: Console, quiet: bool) -> ModelSource:
    """The source as a model of (N, 1, 28, 28) images, which optimize verifies on.

    An ONNX file taking MNIST images in another layout — (28, 28) or (28, 28, 1), as
    TensorFlow exports them, or flat (784,) — gets one exact Reshape or Transpose node in
    front (`adapt_onnx_input`), and says so. Anything else is a clear error.
    """
    if source.input_shape == MNIST_SHAPE:
        return source
    if source.kind == "onnx" and math.prod(source.input_shape) == math.prod(MNIST_SHAPE):
        from jiasu.infer import resolve_model
        from jiasu.integrations.onnx_input import adapt_onnx_input

        assert source.onnx_path is not None
        adapted = adapt_onnx_input(source.onnx_path, scratch / "adapted.onnx", MNIST_SHAPE)
        if not quiet:
            err.print(
                f"{source.description} takes {source.input_shape}; optimizing it with one exact "
                "node in front so it takes (N, 1, 28, 28) images (the artifact takes those)"
            )
        return dataclasses.replace(resolve_model(str(adapted)), description=source.description)
    raise ConfigError(
        f"{source.description} takes inputs of shape {source.input_shape}, but jiasu "
        "optimize verifies on MNIST images (1, 28, 28); pass a model for 28×28 images"
    )


def _names(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise ConfigError("--backends is empty; name at least one backend, e.g. onnxruntime")
    return names


@click.command()
@click.argument("model")
@click.option(
    "--weights",
    type=click.Path(path_type=Path),
    default=None,
    help="Weights for a registry model or factory: .safetensors, a checkpoint folder, "
    "or a torch file (read with weights_only=True).",
)
@click.option("--input-shape", default=None, help="Per-sample input shape, e.g. 1,28,28.")
@data_dir_option
@click.option(
    "--target",
    type=click.Choice(["latency", "throughput"]),
    default="latency",
    show_default=True,
    help="What to minimise: median latency per call, or maximise samples/s.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 65536),
    default=None,
    help="Batch size to measure, 1 to 65536 (default 1 for latency, 256 for throughput).",
)
@click.option(
    "--budget",
    type=float,
    default=0.005,
    show_default=True,
    help="Allowed top-1 accuracy drop: a fraction (0.005 = 0.5 points), or with "
    "--budget-kind relative a fraction of fp32 accuracy (0.01 = keep 99%).",
)
@click.option(
    "--budget-kind",
    type=click.Choice(["absolute", "relative"]),
    default="absolute",
    show_default=True,
)
@click.option(
    "--backends",
    default=None,
    help=f"Comma-separated backends to try (default all: {', '.join(BACKENDS.names())}).",
)
@click.option(
    "--eval-samples",
    type=click.IntRange(min=100),
    default=10_000,
    show_default=True,
    help="Labelled MNIST test images used to verify every candidate.",
)
@click.option(
    "--calibration-samples",
    type=click.IntRange(min=16),
    default=300,
    show_default=True,
    help="MNIST training images used to calibrate static int8.",
)
@click.option(
    "--threads",
    type=click.IntRange(1, max_threads()),
    default=None,
    help="Threads per runtime, 1 to 4 × this machine's CPUs.",
)
@click.option(
    "--measure-s",
    type=click.FloatRange(0.1, 3600),
    default=6.0,
    show_default=True,
    help="About how long all timed calls take together.",
)
@click.option(
    "--isolate/--no-isolate",
    default=True,
    show_default=True,
    help="Time the fastest few candidates again, each loaded alone in its own process "
    "(as deployed), and choose on those figures; --no-isolate chooses on the quicker "
    "screening, where runtimes timed side by side disturb each other.",
)
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Artifact folder.")
@json_option
@html_option
@quiet_option
def optimize(
    model: str,
    weights: Path | None,
    input_shape: str | None,
    data_dir: Path | None,
    target: str,
    batch_size: int | None,
    budget: float,
    budget_kind: str,
    backends: str | None,
    eval_samples: int,
    calibration_samples: int,
    threads: int | None,
    measure_s: float,
    isolate: bool,
    out: Path | None,
    json_path: Path | None,
    html_path: Path | None,
    quiet: bool,
) -> None:
    """Find the fastest inference backend for MODEL that stays within an accuracy budget.

    MODEL is a model directory from `jiasu train --save`, an .onnx file, a registry
    name (mlp, cnn) with --weights, or package.module:factory with --weights. A factory
    is imported, which runs its module's code, as any Python import does; the artifact
    holds the model's graph, so loading it later needs no code (and never imports any
    without `jiasu predict --trust-code`). Every candidate (PyTorch eager, optimized,
    compiled; ONNX Runtime fp32 and int8; OpenVINO) is verified against eager fp32 on
    MNIST test images and timed on this machine.
    """
    from jiasu.core.outputs import Output, check_outputs
    from jiasu.data import load_mnist
    from jiasu.infer import AccuracyBudget, OptimizeConfig, resolve_model
    from jiasu.infer import optimize as run_optimize
    from jiasu.infer.artifact import FOLDER as ARTIFACT
    from jiasu.infer.report import TABLE_COLUMNS, reason_lines, summary_line, timing_note
    from jiasu.ui.progress import TaskProgress, progress_enabled

    outputs = [Output("--out", out, ARTIFACT), Output("--json", json_path)]
    model_path = Path(model) if Path(model).exists() else None  # else a registry name
    inputs = {"MODEL": model_path, "--weights": weights, "--data-dir": data_dir}
    check_outputs([*outputs, Output("--html", html_path)], inputs=inputs)  # before any work
    config = OptimizeConfig(
        target=target,  # type: ignore[arg-type]  # click.Choice guarantees the literal
        batch_size=batch_size,
        budget=AccuracyBudget(budget_kind, budget),  # type: ignore[arg-type]
        backends=_names(backends),
        threads=threads,
        measure_s=measure_s,
        isolate=isolate,
    )
    err = make_console(stderr=True)
    # An adapted copy of an ONNX input lives here for the run.
    with tempfile.TemporaryDirectory(prefix="jiasu-optimize-") as scratch:
        source = resolve_model(model, weights=weights, input_shape=_shape(input_shape))
        source = _for_mnist(source, Path(scratch), err, quiet)
        splits = load_mnist(data_dir)
        test, train = splits.test.take(eval_samples), splits.train
        calibration = train.images[-calibration_samples:].numpy()  # disjoint from the test set
        if not quiet:
            err.print(f"model: {source.description}; data: {splits.source}")
        with TaskProgress(enabled=progress_enabled(quiet)) as bar:
            result = run_optimize(
                source,
                test.images.numpy(),
                test.labels.numpy(),
                calibration,
                config,
                out=out,
                progress=bar,
            )
        table = Table(
            title=f"jiasu optimize — {result.target} at batch {result.batch_size}, "
            f"{result.threads} thread(s), budget {result.budget.describe()}"
        )
        for column in TABLE_COLUMNS:
            left = column in ("candidate", "verdict")
            table.add_column(column, justify="left" if left else "right")
        for row in result.table_rows():
            table.add_row(*row)
        console = make_console()  # a file or pipe: rows are not wrapped at 80 columns
        console.print(table)
        for line in reason_lines(result):
            console.print(f"  {line}", highlight=False)
        console.print(f"  {timing_note(result)}", highlight=False)
        console.print(summary_line(result), highlight=False)
        if json_path is not None:
            result.write_json(json_path)
            err.print(f"wrote {json_path}")
        if html_path is not None:
            from jiasu.report import from_optimize, write_html

            write_html(from_optimize(result.to_dict()), html_path)
            err.print(f"wrote {html_path}")
        if out is not None:
            err.print(f"wrote {out} (load it with jiasu.load or `jiasu predict {out}`)")
