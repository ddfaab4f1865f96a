"""`jiasu train`: train a registered model with a recipe, measured and reported."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.table import Table

from jiasu.cli.options import (
    MAX_WORKERS,
    data_dir_option,
    html_option,
    json_option,
    quiet_option,
)
from jiasu.ui.console import console as make_console

if TYPE_CHECKING:
    from collections.abc import Sequence

    from jiasu.train.auto import Probe


class PositiveFiniteFloat(click.FloatRange):
    """A float above 0 that is neither infinite nor NaN (click's FloatRange lets both in)."""

    def __init__(self) -> None:
        super().__init__(0, min_open=True)

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value} is not a finite number above 0", param, ctx)
        return float(number)


@click.command()
@click.option(
    "--model",
    "model_name",
    default="cnn",
    show_default=True,
    help="Registry model (mlp, cnn, resnet, vgg), a Keras .keras file, or "
    "package.module:factory. A factory is imported, which runs its module's code, as any "
    "Python import does: name only code you trust.",
)
@click.option(
    "--recipe",
    "recipe_spec",
    default="baseline",
    show_default=True,
    help="baseline (the founding document's), fast, auto (measured here), or a .toml/.json file.",
)
@click.option("--epochs", type=click.IntRange(min=1), default=5, show_default=True)
@click.option(
    "--target-accuracy",
    type=click.FloatRange(0, 1, min_open=True),
    default=None,
    help="Stop once test accuracy reaches this (e.g. 0.99); time to it is reported.",
)
@click.option(
    "--target-metric",
    "target_metric_spec",
    default=None,
    metavar="NAME=VALUE",
    help="Stop once the held-out metric reaches VALUE, e.g. r2=0.9 or mse=0.05 (losses and "
    "errors from above); instead of --target-accuracy.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=32,
    show_default=True,
    help="Starting batch size (a recipe may change it).",
)
@click.option(
    "--lr",
    type=PositiveFiniteFloat(),
    default=1e-3,
    show_default=True,
    help="Learning rate: a finite number above 0.",
)
@click.option(
    "--optimizer", default="adam", show_default=True, help="adam, adamw, nadam, adamax or sgd."
)
@click.option(
    "--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
    help="Random seed, 0 to 2**32 - 1.",
)  # fmt: skip
@click.option(
    "--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N, mps, xla or auto."
)
@click.option(
    "--save",
    type=click.Path(path_type=Path),
    default=None,
    help="Write the trained model directory here (safetensors + model.json).",
)
@click.option(
    "--engine",
    type=click.Choice(["local", "ray", "spark"]),
    default=None,
    help="Train data-parallel on this engine (torch.distributed, Ray Train, Spark).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1, max=MAX_WORKERS),
    default=2,
    show_default=True,
    help="Workers for --engine; each gets CPUs / workers threads.",
)
@click.option(
    "--address",
    default=None,
    help="Cluster to join for --engine ray|spark (e.g. ray://host:10001).",
)
@click.option(
    "--train-samples",
    type=click.IntRange(min=1),
    default=None,
    help="Train on the first N training images only (quick runs).",
)
@click.option(
    "--probe-budget",
    "probe_budget_s",
    type=PositiveFiniteFloat(),
    default=None,
    help="Seconds --recipe auto may spend probing techniques (default: about 10% of the "
    "planned training time); techniques left when it is spent are reported as not probed.",
)
@click.option(
    "--data",
    "data_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Your data instead of MNIST: a folder of images (root/<class>/*.png, or train/ "
    "and val/ subfolders), a .npz (input arrays by name and y), or a .csv/.parquet table "
    "with --target-column.",
)
@click.option("--target-column", default=None, help="The column of --data (a table) to predict.")
@click.option(
    "--task",
    type=click.Choice(["classification", "regression"]),
    default=None,
    help="What the targets are; default: inferred from them (class names or few whole "
    "numbers: classification; numbers with fractions: regression).",
)
@click.option(
    "--val-split",
    type=click.FloatRange(0, 1, max_open=True),
    default=None,
    help="Fraction of --data held out for validation when it has no val/ split "
    "(default 0.2, as the founding document); for MNIST, the recipe's default.",
)
@click.option(
    "--resize",
    default=None,
    metavar="H,W",
    help="Resize every image of --data to H,W (images of mixed sizes are refused otherwise).",
)
@data_dir_option
@json_option
@html_option
@quiet_option
def train(
    model_name: str,
    recipe_spec: str,
    epochs: int,
    target_accuracy: float | None,
    target_metric_spec: str | None,
    batch_size: int,
    lr: float,
    optimizer: str,
    seed: int,
    device: str,
    save: Path | None,
    engine: str | None,
    workers: int,
    address: str | None,
    train_samples: int | None,
    probe_budget_s: float | None,
    data_path: Path | None,
    target_column: str | None,
    task: str | None,
    val_split: float | None,
    resize: str | None,
    data_dir: Path | None,
    json_path: Path | None,
    html_path: Path | None,
    quiet: bool,
) -> None:
    """Train MODEL on your --data (or on MNIST, the demo) with a recipe, and report time,
    speed and the task's metrics.

    Examples:

      jiasu train --model cnn --recipe auto --target-accuracy 0.99 --save runs/cnn

      jiasu train --model mypkg.models:resnet18 --data photos/ --save runs/photos

      jiasu train --model mypkg.models:tabular --data table.csv --target-column price

      jiasu train --model mlp --recipe baseline --json baseline.json
    """
    from jiasu.app.train import UserData, run_train_session, save_train_outputs
    from jiasu.train.session import TrainSettings

    err = make_console(stderr=True)
    target_metric = "accuracy"
    if target_metric_spec is not None:
        if target_accuracy is not None:
            raise click.UsageError("give --target-accuracy or --target-metric, not both")
        target_metric, target_accuracy = _target_metric(target_metric_spec)
    settings = TrainSettings(epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer,
                             seed=seed, device=device, target_accuracy=target_accuracy,
                             target_metric=target_metric,
                             probe_budget_s=probe_budget_s)  # fmt: skip
    log = None if quiet else err.print
    user_data = None
    if data_path is not None:
        user_data = UserData(
            data_path, target_column=target_column, task=task,
            val_split=0.2 if val_split is None else val_split, resize=_size(resize),
        )  # fmt: skip
    elif target_column is not None or task is not None or resize is not None:
        raise click.UsageError("--target-column, --task and --resize describe --data; pass it")
    result = run_train_session(
        model_name, recipe_spec, settings, engine=engine, workers=workers, address=address,
        train_samples=train_samples, data_dir=data_dir, data=user_data, save=save,
        json_path=json_path, html_path=html_path, quiet=quiet, log=log,
    )  # fmt: skip
    _print_summary(make_console(), result)
    save_train_outputs(result, json_path=json_path, html_path=html_path, save=save, log=log)


def _size(text: str | None) -> tuple[int, int] | None:
    """--resize H,W as (H, W)."""
    if text is None:
        return None
    parts = text.replace("x", ",").split(",")
    try:
        height, width = (int(p) for p in parts)
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not H,W (e.g. 32,32)", param_hint="--resize"
        ) from None
    if height < 1 or width < 1:
        raise click.BadParameter(f"{text!r} has a size below 1", param_hint="--resize")
    return height, width


def _print_summary(console: Console, result: object) -> None:
    from jiasu.train.session import TrainResult

    assert isinstance(result, TrainResult)
    history = result.history
    table = Table(title=f"jiasu train — {result.spec.name}, recipe {result.recipe.name!r}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("epochs run", str(len(history.epochs)))
    table.add_row("training seconds ¹", f"{history.train_seconds:.2f}")
    if history.compile_seconds:
        table.add_row("compile seconds ²", f"{history.compile_seconds:.2f}")
    table.add_row("samples trained ³", f"{history.samples:,}")
    table.add_row("samples/s ⁴", f"{history.samples_per_s:,.0f}")
    split = result.evaluated_on
    for name, value in result.test_metrics.items():
        if name == "loss":
            continue
        text = f"{value:.2%}" if "accuracy" in name else f"{value:.4g}"
        table.add_row(f"{split} {name.replace('_', ' ')}", text)
    if not result.test_metrics and result.test_accuracy is not None:
        table.add_row("test accuracy", f"{result.test_accuracy:.2%}")
    reached_row = history.target_accuracy is not None
    if history.target_accuracy is not None:
        reached = history.time_to_target_s
        metric, value = history.target_metric, history.target_accuracy
        goal = f"{value:.2%}" if metric == "accuracy" else f"{metric} {value:g}"
        table.add_row(
            f"time to {goal} ⁵",
            "not reached" if reached is None else f"{reached:.2f} s",
        )
    console.print(table)
    from rich.text import Text

    from jiasu.train.history import DEFINITIONS

    keys = ("train_seconds", "compile_seconds", "samples", "samples_per_s", "time_to_target_s")
    shown = {"compile_seconds": history.compile_seconds, "time_to_target_s": reached_row}
    for mark, key in zip("¹²³⁴⁵", keys, strict=True):  # the footnotes of the table's figures
        if shown.get(key, True):
            console.print(Text(f"{mark} {key}: {DEFINITIONS[key]}", style="dim"))
    if result.auto is not None:
        console.print(_probe_table(result.auto.probes))
        console.print(Text(result.auto.budget_line(), style="dim"))
    techniques = result.techniques()
    if techniques["kept"]:
        kept = ", ".join(t["name"] for t in techniques["kept"])
        console.print(Text.assemble(("kept:", "bold"), f" {kept}"))
    for dropped in techniques["dropped"]:
        console.print(Text(f"dropped {dropped['name']}: {dropped['reason']}", style="dim"))


def _probe_table(probes: Sequence[Probe]) -> Table:
    """`--recipe auto`: each probe's measured ratio, interval, rounds and decision."""
    from rich.text import Text

    from jiasu.measure.stats import RATIO_CONFIDENCE

    table = Table(
        title="auto: probes (step time without / with, on top of what was kept before)",
        caption=f"interval: {RATIO_CONFIDENCE:.0%}, paired bootstrap over interleaved rounds; "
        "measured = the interval cleared or missed the threshold, prior = this machine's "
        "earlier decision, default = the technique's default",
        caption_justify="left",
    )
    for column in ("technique", "×", "interval", "rounds", "decision", "why"):
        table.add_column(column, justify="right" if column in ("×", "rounds") else "left")
    for p in probes:
        measured = p.speedup is not None
        table.add_row(
            p.name,
            f"{p.speedup:.2f}" if measured else "—",
            f"{p.speedup_low:.2f}–{p.speedup_high:.2f}" if measured else "—",
            str(p.rounds) if p.rounds else "—",
            f"{p.outcome} ({p.basis})" if measured else p.outcome,
            Text(p.reason),
        )
    return table


def _target_metric(spec: str) -> tuple[str, float]:
    """`--target-metric NAME=VALUE` as (name, value)."""
    name, sep, value = spec.partition("=")
    try:
        number = float(value)
    except ValueError:
        number = None
    if not sep or not name.strip() or number is None:
        raise click.BadParameter(
            f"{spec!r} is not NAME=VALUE; write e.g. r2=0.9 or mse=0.05",
            param_hint="--target-metric",
        )
    return name.strip(), number
