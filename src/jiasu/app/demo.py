"""The `jiasu demo` session: MNIST trained the plain way and jiasu's way, side by side.

`run_demo_session` checks the outputs, loads the data and trains both sides;
`save_demo_outputs` writes the JSON and HTML the user asked for. `run_demo` is the
comparison itself, for callers that bring their own splits.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from jiasu.app import Log
from jiasu.core.recipe import Recipe
from jiasu.data import DatasetSplits, ImageDataset
from jiasu.data.mnist import INPUT_SHAPE
from jiasu.models import ModelSpec
from jiasu.train import History, ReduceLROnPlateau, evaluate, fit
from jiasu.train.recipes import baseline
from jiasu.train.session import SCHEDULE_TECHNIQUES

SCHEMA_VERSION = 2  # 2: one training clock (docs/report.md)


@dataclasses.dataclass(frozen=True)
class DemoSide:
    """One side of the comparison."""

    name: str
    recipe: Recipe
    history: History
    test_accuracy: float

    @property
    def train_seconds(self) -> float:
        return self.history.train_seconds

    @property
    def samples_per_s(self) -> float:
        return self.history.samples_per_s

    def to_dict(self) -> dict[str, Any]:
        return {
            "recipe": self.recipe.to_dict(),
            "techniques_applied": self.history.techniques_applied,
            "techniques_skipped": self.history.techniques_skipped,
            "epochs": len(self.history.epochs),
            "train_seconds": self.train_seconds,
            "samples_per_s": self.samples_per_s,
            "test_accuracy": self.test_accuracy,
            "history": self.history.to_dict()["epochs"],
        }


@dataclasses.dataclass(frozen=True)
class DemoResult:
    baseline: DemoSide
    accelerated: DemoSide
    data_source: str
    is_fallback: bool
    environment: dict[str, Any]
    model: ModelSpec

    @property
    def speedup(self) -> float:
        """Training-time ratio: baseline seconds / accelerated seconds."""
        return self.baseline.train_seconds / self.accelerated.train_seconds

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": "demo",
            "model": self.model.to_dict(),
            "input_shape": list(INPUT_SHAPE),
            "baseline": self.baseline.to_dict(),
            "accelerated": self.accelerated.to_dict(),
            "speedup": self.speedup,
            "data_source": self.data_source,
            "is_fallback": self.is_fallback,
            "environment": self.environment,
        }


def run_demo_session(
    *,
    epochs: int = 5,
    model: str = "mlp",
    seed: int = 0,
    data_dir: Path | None = None,
    json_path: Path | None = None,
    html_path: Path | None = None,
    quiet: bool = False,
    log: Log | None = None,
    note: Log | None = None,
) -> DemoResult:
    """`jiasu demo`: check the outputs, load MNIST (or the digits fallback), train both sides.

    `log` gets the data source and, unless `quiet`, each step; `note` gets why the data is
    a fallback. Every output path is checked before minutes of training.
    """
    from jiasu.core.outputs import Output, check_outputs
    from jiasu.data import load_for_demo

    outputs = [Output("--json", json_path), Output("--html", html_path)]
    check_outputs(outputs, inputs={"--data-dir": data_dir})  # before minutes of training
    splits = load_for_demo(data_dir)
    if splits.is_fallback:
        if note is not None:
            note(splits.notice)
            note(f"using {splits.source}")
    elif log is not None:
        log(f"data: {splits.source}")
    return run_demo(
        splits, epochs=epochs, seed=seed, quiet=quiet, model=model,
        announce=None if quiet else log,
    )  # fmt: skip


def save_demo_outputs(
    result: DemoResult,
    *,
    json_path: Path | None = None,
    html_path: Path | None = None,
    log: Log | None = None,
) -> None:
    """Write the result as JSON and as an HTML report, where asked; `log` each file written."""
    if json_path is not None:
        write_json(result, json_path)
        if log is not None:
            log(f"wrote {json_path}")
    if html_path is not None:
        from jiasu.report import flops_per_sample, from_demo, write_html

        flops = flops_per_sample(result.model.build(), INPUT_SHAPE, training=True)
        write_html(from_demo(result.to_dict(), flops_per_sample=flops), html_path)
        if log is not None:
            log(f"wrote {html_path}")


def run_demo(
    splits: DatasetSplits,
    *,
    epochs: int = 5,
    seed: int = 0,
    quiet: bool = False,
    model: str = "mlp",
    accelerated_recipe: Recipe | None = None,
    announce: Any = None,
) -> DemoResult:
    """Train `model` twice on `splits.train` — baseline recipe, then jiasu's — and test both.

    Both sides follow the founding document: Adam (lr 1e-3), batch 32, `epochs` epochs,
    the last 20% of the training data held out for validation, and ReduceLROnPlateau
    (factor 0.1, patience 3) on the validation loss. jiasu's way (unless
    `accelerated_recipe` is given) is `--recipe auto`: the exact and numeric techniques that
    pay on this machine, probed for a few steps each, plus the benchmarked schedule (larger
    batches, one-cycle), which replaces the plateau schedule and the hold-out.
    """
    from jiasu.measure import capture_environment

    spec = ModelSpec(model)
    sides = []
    if accelerated_recipe is None:
        if announce is not None:
            announce("choosing jiasu's recipe: probing techniques on this machine (--recipe auto)")
        accelerated_recipe = _auto_recipe(spec, splits, epochs, seed)
    for name, recipe in (("baseline", baseline()), ("accelerated", accelerated_recipe)):
        if announce is not None:
            techniques = ", ".join(recipe.names()) or "no techniques"
            announce(f"training the {name} way: recipe {recipe.name!r} ({techniques})")
        sides.append(_train_side(name, recipe, spec, splits, epochs=epochs, seed=seed, quiet=quiet))
    return DemoResult(
        baseline=sides[0],
        accelerated=sides[1],
        data_source=splits.source,
        is_fallback=splits.is_fallback,
        environment=capture_environment("cpu"),
        model=spec,
    )


def _auto_recipe(spec: ModelSpec, splits: DatasetSplits, epochs: int, seed: int) -> Recipe:
    from jiasu.train.auto import auto_recipe
    from jiasu.train.data import as_arrays

    return auto_recipe(
        spec, as_arrays(splits.train, "training data"), epochs=epochs, seed=seed
    ).recipe


def _train_side(
    name: str,
    recipe: Recipe,
    spec: ModelSpec,
    splits: DatasetSplits,
    *,
    epochs: int,
    seed: int,
    quiet: bool,
) -> DemoSide:
    own_schedule = bool(SCHEDULE_TECHNIQUES & set(recipe.names()))
    torch.manual_seed(seed)  # the same initial weights on both sides
    model = spec.build()
    history = fit(
        model,
        splits.train,
        epochs=epochs,
        batch_size=32,
        optimizer="adam",
        lr=1e-3,
        # the founding document's hold-out and plateau schedule, unless the recipe
        # brings its own schedule (then it trains on all the data, as `jiasu train` does)
        validation_split=0.0 if own_schedule else 0.2,
        callbacks=[] if own_schedule else [ReduceLROnPlateau("val_loss", factor=0.1, patience=3)],
        recipe=recipe,
        seed=seed,
        quiet=quiet,
        model_spec=spec,
    )
    test: ImageDataset = splits.test
    _, accuracy = evaluate(model, test.images, test.labels)
    return DemoSide(name, recipe, history, accuracy)


def write_json(result: DemoResult, path: str | Path) -> None:
    import json

    from jiasu.core.atomic import atomic_write_text

    atomic_write_text(path, json.dumps(result.to_dict(), indent=2) + "\n")
