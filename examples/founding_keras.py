"""The founding document's Keras example (section 4.1), corrected, and accelerated by jiasu.

The document's snippet, fixed as docs/founding_example.md explains: a Flatten layer first,
128 hidden units, logits out with ``from_logits=True``, Adam, batch 32, 5 epochs, the last
20 % held out, ReduceLROnPlateau(factor 0.1, patience 3). Its "moving average gradient sum
with sticky" accelerator becomes jiasu's gradient pipeline. Three runs, same data, same run:

1. ``keras``: plain ``model.fit`` (the baseline);
2. ``keras+jiasu``: ``model.fit`` with `KerasAcceleration` (optimizer options and callbacks);
3. ``jiasu.fit``: the same Keras model trained by jiasu as a torch module.

Run: ``python examples/founding_keras.py`` (``--help`` for the options).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")  # before Keras is imported

import keras

import jiasu
from jiasu.core.recipe import Recipe
from jiasu.data import DatasetSplits, load_mnist
from jiasu.hardware.threads import default_threads, threads
from jiasu.integrations.keras import KerasAcceleration, as_torch_module
from jiasu.train import ReduceLROnPlateau, evaluate
from jiasu.train.recipes import fast
from jiasu.train.techniques import Accumulate, Ema, Lookahead, Threads


def build_model(hidden: int = 128) -> keras.Model:
    """The document's model, corrected: Flatten first, and logits (no softmax) out."""
    return keras.models.Sequential(
        [
            keras.Input(shape=(28, 28)),
            keras.layers.Flatten(),
            keras.layers.Dense(hidden, activation="relu"),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(10),  # logits: the loss below has from_logits=True
        ]
    )


@dataclasses.dataclass(frozen=True)
class Settings:
    epochs: int = 5
    batch_size: int = 32
    hidden: int = 128
    seed: int = 0
    accumulate: int = 1  # the document's "gradient sum" (1: none)
    ema_decay: float = 0.99  # its "moving average" of the weights (about 100 steps)
    lookahead_every: int = 5  # its "sticky": Lookahead
    lookahead_alpha: float = 0.5
    train_samples: int | None = None  # None: all 60,000
    threads: int | None = None  # intra-op threads for all three runs (None: every CPU)


@dataclasses.dataclass(frozen=True)
class Row:
    name: str
    train_s: float
    test_accuracy: float


def _compile(model: keras.Model, optimizer: keras.optimizers.Optimizer) -> None:
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=optimizer, loss=loss_fn, metrics=["accuracy"])


def _keras_run(
    name: str, splits: DatasetSplits, settings: Settings, acceleration: KerasAcceleration | None
) -> Row:
    x, y = splits.train.images[:, 0].numpy(), splits.train.labels.numpy()  # (N, 28, 28), (N,)
    keras.utils.set_random_seed(settings.seed)
    model = build_model(settings.hidden)
    optimizer = keras.optimizers.Adam()
    callbacks = [keras.callbacks.ReduceLROnPlateau(factor=0.1, patience=3)]
    if acceleration is not None:
        optimizer = acceleration.optimizer(optimizer)
        callbacks += acceleration.callbacks()
    _compile(model, optimizer)
    start = time.perf_counter()
    model.fit(x, y, epochs=settings.epochs, batch_size=settings.batch_size, validation_split=0.2,
              callbacks=callbacks, verbose=0)  # fmt: skip
    train_s = time.perf_counter() - start
    _, accuracy = model.evaluate(
        splits.test.images[:, 0].numpy(), splits.test.labels.numpy(), batch_size=1024, verbose=0
    )
    return Row(name, train_s, float(accuracy))


def _jiasu_run(splits: DatasetSplits, settings: Settings) -> Row:
    keras.utils.set_random_seed(settings.seed)
    module = as_torch_module(build_model(settings.hidden))  # the same Keras model, as nn.Module
    start = time.perf_counter()
    jiasu.fit(module, splits.train, epochs=settings.epochs, batch_size=settings.batch_size,
              validation_split=0.2, recipe=_recipe(settings), seed=settings.seed, quiet=True,
              callbacks=[ReduceLROnPlateau(factor=0.1, patience=3)])  # fmt: skip
    train_s = time.perf_counter() - start
    _, accuracy = evaluate(module, splits.test.images, splits.test.labels)
    return Row("jiasu.fit", train_s, accuracy)


def pipeline(settings: Settings) -> Recipe:
    """The document's accelerator as jiasu techniques: gradient sum, moving average, sticky."""
    techniques = [Ema(decay=settings.ema_decay), Lookahead(settings.lookahead_every,
                                                           settings.lookahead_alpha)]  # fmt: skip
    if settings.accumulate > 1:
        techniques.insert(0, Accumulate(k=settings.accumulate))
    return Recipe("founding", tuple(techniques))


def _recipe(settings: Settings) -> Recipe:
    """jiasu's `fast` recipe (threads, data on the device, fused Adam) plus the pipeline."""
    speed = (Threads(num_threads=settings.threads), *fast().techniques[1:])
    return Recipe("founding-fast", speed + pipeline(settings).techniques)


def run(splits: DatasetSplits, settings: Settings, *, verbose: bool = True) -> list[Row]:
    """Train the three ways on the same data; return the rows (baseline first)."""
    if settings.train_samples is not None:
        splits = dataclasses.replace(splits, train=splits.train.take(settings.train_samples))
    inside = (Threads(num_threads=settings.threads), *pipeline(settings).techniques)
    acceleration = KerasAcceleration.from_recipe(Recipe("inside-keras", inside))  # Keras can take
    if verbose:
        for row in acceleration.plan():
            print(f"  keras+jiasu {row['status']}: {row['name']} ({row['detail']})")
    with threads(settings.threads or default_threads()):  # the baseline gets the same threads
        rows = [
            _keras_run("keras", splits, settings, None),
            _keras_run("keras+jiasu", splits, settings, acceleration),
            _jiasu_run(splits, settings),
        ]
    if verbose:
        print(format_rows(rows))
    return rows


def format_rows(rows: list[Row]) -> str:
    base = rows[0]
    lines = [f"{'run':<12} {'train s':>8} {'speed-up':>9} {'test acc':>9} {'Δ acc':>7}"]
    for row in rows:
        lines.append(
            f"{row.name:<12} {row.train_s:>8.1f} {base.train_s / row.train_s:>8.2f}× "
            f"{row.test_accuracy:>9.2%} {100 * (row.test_accuracy - base.test_accuracy):>+6.2f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None, help="folder with the MNIST files")
    parser.add_argument("--epochs", type=int, default=Settings.epochs)
    parser.add_argument("--batch-size", type=int, default=Settings.batch_size)
    parser.add_argument("--accumulate", type=int, default=Settings.accumulate)
    parser.add_argument("--train-samples", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None, help="default: every CPU")
    args = parser.parse_args(argv)
    settings = Settings(
        epochs=args.epochs,
        batch_size=args.batch_size,
        accumulate=args.accumulate,
        train_samples=args.train_samples,
        threads=args.threads,
    )
    splits = load_mnist(args.data_dir)
    print(f"data: {splits.source}; Keras {keras.__version__} on {keras.config.backend()}")
    return run(splits, settings)


if __name__ == "__main__":
    main()
