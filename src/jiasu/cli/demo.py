"""`jiasu demo`: the founding example, trained the plain way and jiasu's way."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table
from rich.text import Text

from jiasu.cli.options import data_dir_option, html_option, json_option, quiet_option
from jiasu.ui.console import console as make_console


@click.command()
@click.option("--quick", is_flag=True, help="One epoch per side instead of five (under 2 minutes).")
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    default=None,
    help="Epochs per side (default 5, or 1 with --quick).",
)
@click.option(
    "--model",
    type=click.Choice(["mlp", "cnn"]),
    default="mlp",
    show_default=True,
    help="Model to train.",
)
@click.option(
    "--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
    help="Random seed for both sides, 0 to 2**32 - 1.",
)  # fmt: skip
@data_dir_option
@json_option
@html_option
@quiet_option
def demo(
    quick: bool,
    epochs: int | None,
    model: str,
    seed: int,
    data_dir: Path | None,
    json_path: Path | None,
    html_path: Path | None,
    quiet: bool,
) -> None:
    """Train the founding example (MNIST classifier) the plain way and jiasu's way.

    Both sides use the founding document's settings — Adam 1e-3, batch 32, 20% held
    out for validation, ReduceLROnPlateau(factor 0.1, patience 3) — and differ only in
    the recipe. Both are evaluated on the 10,000 MNIST test images.
    """
    from jiasu.app.demo import run_demo_session, save_demo_outputs

    console = make_console()
    err = make_console(stderr=True)
    n_epochs = epochs or (1 if quick else 5)
    result = run_demo_session(
        epochs=n_epochs, model=model, seed=seed, data_dir=data_dir,
        json_path=json_path, html_path=html_path, quiet=quiet, log=err.print,
        note=lambda text: err.print(Text.assemble(("note:", "yellow"), f" {text}")),
    )  # fmt: skip
    data_name = "digits (fallback)" if result.is_fallback else "MNIST"
    table = Table(title=f"jiasu demo — {model} on {data_name}, {n_epochs} epoch(s)")
    table.add_column("way")
    table.add_column("recipe")
    table.add_column("train s", justify="right")
    table.add_column("samples/s", justify="right")
    table.add_column("test accuracy", justify="right")
    table.add_column("speedup", justify="right")
    for side in (result.baseline, result.accelerated):
        speed = result.baseline.train_seconds / side.train_seconds
        table.add_row(
            side.name,
            side.recipe.name if side.recipe.techniques else "plain PyTorch",
            f"{side.train_seconds:.1f}",
            f"{side.samples_per_s:,.0f}",
            f"{side.test_accuracy:.2%}",
            Text(f"{speed:.2f}×", style="green" if speed >= 1 else "red"),
        )
    console.print(table)
    kept = ", ".join(t.describe() for t in result.accelerated.recipe.techniques)
    console.print(f"jiasu's recipe ({result.accelerated.recipe.name}): {kept}", highlight=False)
    delta = (result.accelerated.test_accuracy - result.baseline.test_accuracy) * 100
    console.print(
        f"jiasu's way trained {result.speedup:.2f}× faster "
        f"({result.baseline.train_seconds:.1f} s → {result.accelerated.train_seconds:.1f} s) "
        f"with test accuracy {delta:+.2f} points."
    )
    save_demo_outputs(result, json_path=json_path, html_path=html_path, log=err.print)
