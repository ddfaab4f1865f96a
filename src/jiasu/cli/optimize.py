"""`jiasu optimize`: the fastest inference artifact within an accuracy budget, with evidence."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from jiasu.cli.options import (
    data_dir_option,
    html_option,
    json_option,
    quiet_option,
    trust_code_option,
)
from jiasu.core.errors import ConfigError
from jiasu.core.signature import InputSignature
from jiasu.hardware.threads import max_threads
from jiasu.infer.backends import BACKENDS
from jiasu.ui.console import console as make_console


def _signature(spec: str | None, shape: str | None) -> InputSignature | None:
    """The signature from --input-spec or --input-shape (one float32 input)."""
    if spec is not None and shape is not None:
        raise ConfigError("--input-spec and --input-shape both describe the inputs; pass one")
    if spec is not None:
        return InputSignature.parse(spec)
    if shape is None:
        return None
    try:
        dims = tuple(int(part) for part in shape.split(","))
    except ValueError:
        dims = ()
    if not dims or any(d < 1 for d in dims):
        raise ConfigError(
            f"--input-shape {shape!r} is invalid; write one sample's shape as C,H,W, e.g. "
            "3,224,224 (or use --input-spec for named, integer or several inputs)"
        )
    return InputSignature.from_shape(dims)


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
@click.option(
    "--input-spec",
    default=None,
    help="The model's inputs, in order: name:dtype[axes], comma-separated; an axis is a "
    "size or a name (symbolic; the first is the batch), e.g. "
    "'input_ids:int64[B,128],attention_mask:int64[B,128]'.",
)
@click.option(
    "--input-shape",
    default=None,
    help="One float32 input: the shape of one sample, e.g. 3,224,224 (default for a "
    "registry model or factory: MNIST's 1,28,28).",
)
@click.option(
    "--output-name",
    default=None,
    help="The model output to verify and serve: a key of a dict or ModelOutput, or the "
    "index of a tuple item (default: logits if there is one, else the first tensor).",
)
@click.option(
    "--data",
    type=click.Path(path_type=Path),
    default=None,
    help="Your inputs, to verify on (and calibrate int8): .npz (arrays by input name, "
    "optional 'labels'), .npy, .csv or .parquet (feature columns), or an image folder "
    "(one subfolder per class). Default: MNIST for a model of 28×28 images, else inputs "
    "generated from the signature (timing only: accuracy not verified).",
)
@click.option(
    "--label-column", default=None, help="The labels' column in a --data CSV or Parquet file."
)
@click.option(
    "--metric",
    type=click.Choice(["accuracy", "mse", "mae"]),
    default=None,
    help="The metric the budget bounds, when --data has labels (default: accuracy for "
    "class labels, mse for numbers). Without labels: agreement with eager fp32.",
)
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
    default=None,
    help="How much worse an approximate candidate (int8, bf16) may be, a fraction in [0, 1): "
    "accuracy or top-1 agreement lost (0.005 = half a point), or with --budget-kind "
    "relative a fraction of fp32's figure (0.01 = 1% more MSE). Default: 0.005 absolute, "
    "and 0.01 relative for mse/mae.",
)
@click.option(
    "--budget-kind",
    type=click.Choice(["absolute", "relative"]),
    default=None,
    help="absolute (default) or relative; see --budget.",
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
    help="At most this many samples (of --data, or MNIST test images) verify every candidate.",
)
@click.option(
    "--calibration-samples",
    type=click.IntRange(min=16),
    default=300,
    show_default=True,
    help="Samples that calibrate static int8: the first rows of --data (at most half), or "
    "MNIST training images.",
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
@trust_code_option
@click.option(
    "--time-budget",
    "time_budget_s",
    type=click.FloatRange(1, 86400),
    default=None,
    help="Seconds for the whole search (soft: no candidate starts building after 70% of "
    "it; the ones not built are listed as skipped). Default: no limit.",
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
    input_spec: str | None,
    input_shape: str | None,
    output_name: str | None,
    data: Path | None,
    label_column: str | None,
    metric: str | None,
    data_dir: Path | None,
    target: str,
    batch_size: int | None,
    budget: float | None,
    budget_kind: str | None,
    backends: str | None,
    eval_samples: int,
    calibration_samples: int,
    threads: int | None,
    measure_s: float,
    trust_code: bool,
    time_budget_s: float | None,
    isolate: bool,
    out: Path | None,
    json_path: Path | None,
    html_path: Path | None,
    quiet: bool,
) -> None:
    """Find the fastest inference backend for MODEL that stays within an accuracy budget.

    MODEL is a model directory from `jiasu train --save`, an .onnx file, a .keras file, a
    registry name (mlp, cnn) with --weights, or package.module:factory with --weights
    (any nn.Module: say what it takes with --input-spec or --input-shape). A factory is
    imported, which runs its module's code, as any Python import does; the artifact holds
    the model's graph, so loading it later needs no code (and never imports any without
    `jiasu predict --trust-code`). Every candidate (PyTorch eager, optimized, compiled;
    ONNX Runtime fp32 and int8; OpenVINO fp32, bf16, int8) is verified against eager fp32
    on --data (or MNIST for a model of 28×28 images) and timed on this machine.
    """
    from jiasu.app.optimize import OptimizeRequest, run_optimize
    from jiasu.core.outputs import Output, check_outputs
    from jiasu.infer import AccuracyBudget, OptimizeConfig
    from jiasu.infer.artifact import FOLDER as ARTIFACT
    from jiasu.infer.report import reason_lines, summary_line, timing_note
    from jiasu.ui.progress import TaskProgress, progress_enabled

    outputs = [Output("--out", out, ARTIFACT), Output("--json", json_path)]
    model_path = Path(model) if Path(model).exists() else None  # else a registry name
    inputs = {"MODEL": model_path, "--weights": weights, "--data-dir": data_dir, "--data": data}
    check_outputs([*outputs, Output("--html", html_path)], inputs=inputs)  # before any work
    if label_column is not None and data is None:
        raise ConfigError("--label-column names a column of --data; pass --data too")
    chosen_budget = None
    if budget is not None or budget_kind is not None:
        chosen_budget = AccuracyBudget(
            budget_kind or "absolute",  # type: ignore[arg-type]  # click.Choice
            0.005 if budget is None else budget,
        )
    config = OptimizeConfig(
        target=target,  # type: ignore[arg-type]  # click.Choice guarantees the literal
        batch_size=batch_size,
        budget=chosen_budget,
        backends=_names(backends),
        threads=threads,
        measure_s=measure_s,
        isolate=isolate,
        time_budget_s=time_budget_s,
    )
    request = OptimizeRequest(
        model=model,
        weights=weights,
        signature=_signature(input_spec, input_shape),
        output=output_name,
        data=data,
        label_column=label_column,
        metric=metric,
        data_dir=data_dir,
        eval_samples=eval_samples,
        calibration_samples=calibration_samples,
        out=out,
        trust_code=trust_code,
    )
    err = make_console(stderr=True)
    with TaskProgress(enabled=progress_enabled(quiet)) as bar:
        result = run_optimize(
            request, config, progress=bar, log=(lambda _line: None) if quiet else err.print
        )
    table = Table(
        title=f"jiasu optimize — {result.target} at batch {result.batch_size}, "
        f"{result.threads} thread(s), budget {result.budget.describe(result.task)}"
    )
    for column in result.table_columns():
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
