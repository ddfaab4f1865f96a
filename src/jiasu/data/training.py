"""The user's training data, from any file jiasu reads: `read_training_data(path, ...)`.

`path` is one of:

- a folder of images, ``root/<class>/*.png`` or ``root/train/<class>/...`` with
  ``root/val/<class>/...`` and optionally ``root/test/<class>/...`` (see
  jiasu.data.training_images): a classification over the class folders; float32
  (N, C, H, W) in [0, 1], streamed from disk when it would not fit in memory;
- an ``.npz`` of named input arrays and the targets ``y`` (or ``labels`` / ``label``);
  arrays named ``val_<input>`` and ``val_y`` form the validation split, ``test_<input>``
  and ``test_y`` the test split, when present. One input is passed to the model by
  position, several by name (``numpy.savez(path, x0, x1, y=y)``'s ``arr_0, arr_1`` by
  position, in order). Unsigned bytes are pixels (scaled to [0, 1]); float64 becomes
  float32;
- a ``.csv`` / ``.parquet`` table with `target_column`: every other column is a numeric
  feature, together one float32 input ``features`` (N, features).

The task comes from the targets unless `task` says: class names or integers (at most
`MAX_INFERRED_CLASSES` distinct values in a table) mean classification, fractions mean
regression. A table's classes are its distinct target values, sorted, as ids 0..C-1;
an .npz's integer targets are class ids as they are. Without a validation split in the
data, `val_split` of the training samples (shuffled with `seed`) validate; `test_split`
likewise holds out a test split when the data has none. Anything that cannot train is
one `ConfigError` or `DataError` sentence, before any training.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from jiasu.core.errors import ConfigError, DataError
from jiasu.core.task import Task
from jiasu.data.examples import Examples, Samples, TrainingData
from jiasu.data.npz import TARGET_KEYS, read_npz
from jiasu.data.tables import TABLE_SUFFIXES, feature_matrix, read_table, show_columns
from jiasu.data.training_images import check_resize, find_image_files, read_image_splits

SPLIT_PREFIXES = {"val": "val_", "test": "test_"}
MAX_INFERRED_CLASSES = 100  # integer table targets with more distinct values are regression
TRAIN_FORMATS = (
    "a folder of images in class folders, an .npz of input arrays and y, or a .csv or "
    ".parquet table with --target-column"
)
_NPZ_HOW = "save it with numpy.savez(path, input_name=inputs, y=targets)"


def read_training_data(
    path: str | os.PathLike[str],
    *,
    target_column: str | None = None,
    task: str | Task | None = None,
    val_split: float = 0.2,
    test_split: float | None = None,
    resize: tuple[int, int] | None = None,
    stream: bool | None = None,
    seed: int = 0,
) -> TrainingData:
    """The training data in `path` (an image folder, .npz, .csv or .parquet; see the module
    docstring), split and with its task.

    `task` is "classification", "regression" or a `Task` (inferred from the targets when
    None). `resize` (height, width) resizes images; `stream` True streams an image folder
    from disk, False keeps it in memory, None decides by the memory available.

    >>> data = read_training_data("photos/")  # doctest: +SKIP
    >>> data.source  # doctest: +SKIP
    'photos (image folder, 3 classes, 120 images 3x32x32, in memory)'
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"training data {path} does not exist; check the path")
    wanted = _task_kind(task)
    val_split, test_split = _fraction(val_split, "val_split"), _fraction(test_split, "test_split")
    if val_split + (test_split or 0.0) >= 1:
        raise ConfigError(
            f"val_split {val_split} and test_split {test_split} leave nothing to train on; "
            "keep their sum below 1"
        )
    suffix = path.suffix.lower()
    if target_column is not None and (path.is_dir() or suffix not in TABLE_SUFFIXES):
        raise ConfigError(
            f"--target-column names a column of a .csv or .parquet table, but {path} is not "
            "one; give an .npz's targets as an array named y"
        )
    if not path.is_dir() and (resize is not None or stream):
        raise ConfigError(
            f"resize and stream apply to folders of images, but {path} is a file; drop them"
        )
    if path.is_dir():
        splits, classes, source, targets_task = _image_folder(path, wanted, resize, stream)
    elif suffix == ".npz":
        splits, classes, source, targets_task = _npz(path, wanted)
    elif suffix in TABLE_SUFFIXES:
        splits, classes, source, targets_task = _table(path, target_column, wanted)
    else:
        raise DataError(f"{path} is not training data jiasu reads; pass {TRAIN_FORMATS}")
    if isinstance(task, Task) and task.kind == targets_task.kind == "regression":
        targets_task = task  # the user's metric (mse or mae)
    train, val, test = _split(splits, val_split, test_split, seed, source)
    return TrainingData(train, val, test, targets_task, classes, source)


# --- formats ------------------------------------------------------------------------------

Read = tuple[dict[str, Samples], tuple[str, ...] | None, str, Task]


def _image_folder(path: Path, wanted: str | None, resize: Any, stream: bool | None) -> Read:
    if wanted == "regression":
        raise ConfigError(
            f"{path} is a folder of images in class folders, a classification; drop task "
            "regression, or pass the images and their targets as an .npz"
        )
    files = find_image_files(path)
    splits, source = read_image_splits(path, files, resize=check_resize(resize), stream=stream)
    task = Task("classification", "accuracy", len(files.classes))
    return splits, files.classes, source, task


def _npz(path: Path, wanted: str | None) -> Read:
    arrays = read_npz(path, how=_NPZ_HOW)
    prefixes = tuple(SPLIT_PREFIXES.values())
    names = [k for k in arrays if k not in TARGET_KEYS and not k.startswith(prefixes)]
    key = next((k for k in TARGET_KEYS if k in arrays), None)
    if key is None:
        raise DataError(
            f"{path} holds no targets (arrays {show_columns(arrays)}); add them as an array "
            f"named y, one per sample: {_NPZ_HOW}"
        )
    if not names:
        raise DataError(f"{path} holds targets but no input arrays; {_NPZ_HOW}")
    split_arrays = {"train": ([arrays[n] for n in names], arrays[key])}
    for split, prefix in SPLIT_PREFIXES.items():
        given = [k for k in arrays if k.startswith(prefix)]
        if given:
            missing = [prefix + n for n in (*names, key) if prefix + n not in arrays]
            extra = [k for k in given if k.removeprefix(prefix) not in (*names, key)]
            if missing or extra:
                problem = f"lacks {', '.join(missing)}" if missing else f"has {', '.join(extra)}"
                raise DataError(
                    f"{path} {problem} for its {split} split; give {prefix}<name> for every "
                    f"input ({', '.join(names)}) and {prefix}{key}, or none"
                )
            split_arrays[split] = ([arrays[prefix + n] for n in names], arrays[prefix + key])
    for split, (inputs, y) in split_arrays.items():
        rows = {n: len(a) if a.ndim else 0 for n, a in zip(names, inputs, strict=True)}
        if len({*rows.values(), len(y) if y.ndim else 0}) > 1:
            counts = ", ".join(f"{n} {r}" for n, r in rows.items())
            raise DataError(
                f"{path}'s {split} arrays have different numbers of samples ({counts}, "
                f"{key} {len(y) if y.ndim else 0}); give every input and the targets one row "
                "per sample"
            )
    targets, task, classes = _targets_task(
        {s: y for s, (_, y) in split_arrays.items()}, wanted, f"{path}'s {key}", remap=False
    )
    positional = len(names) == 1 or names == [f"arr_{i}" for i in range(len(names))]
    splits: dict[str, Samples] = {}
    for split, (inputs, _) in split_arrays.items():
        arranged = tuple(inputs) if positional else dict(zip(names, inputs, strict=True))
        splits[split] = Examples.from_arrays(
            arranged, targets[split], names=names if positional else None
        )
    n = sum(len(s) for s in splits.values())
    source = f"{path} (.npz, inputs {', '.join(names)}, {n} samples, {_task_words(task)})"
    return splits, classes, source, task


def _table(path: Path, target_column: str | None, wanted: str | None) -> Read:
    frame = read_table(path)
    columns = list(frame.columns)
    if target_column is None:
        raise ConfigError(
            f"{path} is a table; name the column to predict with --target-column (its columns "
            f"are {show_columns(columns)})"
        )
    if target_column not in columns:
        raise ConfigError(
            f"{path} has no column {target_column!r} for --target-column; its columns are "
            f"{show_columns(columns, limit=20)}"
        )
    if not len(frame):
        raise DataError(f"{path} holds no rows; pass a table with at least one sample per row")
    column = frame[target_column]
    if column.isna().any():
        row = int(np.flatnonzero(column.isna().to_numpy())[0])
        raise DataError(
            f"{path}'s target column {target_column!r} has {int(column.isna().sum())} missing "
            f"values (the first in row {row + 1}); fill or drop those rows"
        )
    features = frame.drop(columns=[target_column])
    if not len(features.columns):
        raise DataError(
            f"{path} has no columns besides the target {target_column!r}; add feature columns"
        )
    values = feature_matrix(features, path, "")
    what = f"{path}'s target column {target_column!r}"
    targets, task, classes = _targets_task({"train": column.to_numpy()}, wanted, what, remap=True)
    examples = Examples.from_arrays((values,), targets["train"], names=["features"])
    source = (
        f"{path} (table, {values.shape[1]} feature columns, target {target_column!r}, "
        f"{len(values)} rows, {_task_words(task)})"
    )
    return {"train": examples}, classes, source, task


# --- targets and task ---------------------------------------------------------------------


def _targets_task(
    targets: dict[str, np.ndarray], wanted: str | None, what: str, *, remap: bool
) -> tuple[dict[str, np.ndarray], Task, tuple[str, ...] | None]:
    """Each split's targets as training takes them, the task and the class names.

    `remap` (tables): class ids are the sorted distinct values' positions and the classes
    their names; else (arrays) integer targets are the class ids themselves."""
    every = np.concatenate([np.asarray(t).reshape(len(t), -1) for t in targets.values()])
    kind = every.dtype.kind
    text = kind not in "biuf"
    whole = not text and (kind != "f" or bool(np.all(every == np.round(every))))
    if not text and kind == "f" and not np.all(np.isfinite(every)):
        raise DataError(f"{what} holds NaN or infinite values; fill or drop those samples")
    if wanted is None:
        distinct = len(np.unique(every)) if not text else 0
        classify = text or (kind in "biu" and (not remap or distinct <= MAX_INFERRED_CLASSES))
        wanted = "classification" if classify else "regression"
    if wanted == "regression":
        if text:
            raise ConfigError(
                f"{what} holds {every.dtype} values such as {every.flat[0]!r}, not numbers; "
                "regression needs numeric targets, so encode them or use task classification"
            )
        out = {s: np.asarray(t, dtype=np.float32) for s, t in targets.items()}
        return out, Task("regression", "mse"), None
    if every.shape[1] != 1:
        raise DataError(
            f"{what} has {every.shape[1]} values per sample; a classification takes one class "
            "per sample, so pass (N,) class ids or use task regression"
        )
    if not text and not whole:
        example = every[np.flatnonzero(every != np.round(every))[0]].item()
        raise ConfigError(
            f"{what} holds fractional values such as {example!r}, which are not classes; "
            "use task regression for numeric targets, or pass whole-number class ids"
        )
    if remap or text:
        values = [np.asarray(t).reshape(-1) for t in targets.values()]
        names, ids = np.unique(np.concatenate(values), return_inverse=True)
        bounds = np.cumsum([0, *(len(v) for v in values)])
        out = {
            s: ids[a:b].astype(np.int64)
            for s, a, b in zip(targets, bounds[:-1], bounds[1:], strict=True)
        }
        classes: tuple[str, ...] | None = tuple(_name(v) for v in names)
        count = len(names)
    else:
        out = {s: np.asarray(t).reshape(-1).astype(np.int64) for s, t in targets.items()}
        low = min(int(t.min()) for t in out.values())
        if low < 0:
            raise DataError(
                f"{what} holds class id {low}; class ids are 0 to C-1, so shift or encode them"
            )
        classes, count = None, max(int(t.max()) for t in out.values()) + 1
    if count < 2:
        raise DataError(
            f"{what} holds one class only; a classifier needs samples of at least two classes"
        )
    return out, Task("classification", "accuracy", count), classes


def _name(value: Any) -> str:
    """A class value as its name: 3.0 -> "3", "cat" -> "cat"."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _task_words(task: Task) -> str:
    return f"{task.classes} classes" if task.kind == "classification" else "regression"


# --- splits -------------------------------------------------------------------------------


def _split(
    splits: dict[str, Samples], val_split: float, test_split: float | None, seed: int, source: str
) -> tuple[Samples, Samples | None, Samples | None]:
    """Train, validation and test: the data's own, else held out of the training samples
    (test first, then validation) in one seeded shuffle."""
    train = splits["train"]
    val, test = splits.get("val"), splits.get("test")
    n = len(train)
    n_test = _held_out(n, test_split) if test is None else 0
    n_val = _held_out(n, val_split) if val is None else 0
    if n_test + n_val and n - n_test - n_val < 1:
        raise DataError(
            f"{source} has {n} training samples, too few to hold out {n_val} for validation "
            f"and {n_test} for testing; add samples or lower val_split"
        )
    if not n_test + n_val:
        return train, val, test
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    if n_test:
        test = train.take(order[:n_test])
    if n_val:
        val = train.take(order[n_test : n_test + n_val])
    return train.take(order[n_test + n_val :].sort().values), val, test


def _held_out(n: int, fraction: float | None) -> int:
    """round(n * fraction) samples, at least one for a fraction above 0."""
    if not fraction:
        return 0
    return max(1, round(n * fraction))


def _fraction(value: Any, name: str) -> Any:
    if value is None and name == "test_split":
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 <= value < 1
    ):
        raise ConfigError(
            f"{name} {value!r} is invalid; use a fraction in [0, 1), such as 0.2 for 20% of "
            "the training samples"
        )
    return float(value)


def _task_kind(task: str | Task | None) -> str | None:
    if task is None:
        return None
    kind = task.kind if isinstance(task, Task) else str(task).strip().lower()
    if kind not in ("classification", "regression"):
        raise ConfigError(f"task {task!r} is unknown; use classification or regression")
    return kind
