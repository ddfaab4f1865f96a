"""The user's inputs, from any file jiasu reads, as arrays that fit a model's signature.

`read_inputs(path, signature)` reads one of:

- ``.npz``: one array per input, by the input's name (a single array fills a one-input
  model whatever its key; ``arr_0, arr_1, ...`` from ``numpy.savez(path, a, b)`` fill the
  inputs in order); an array named ``y``, ``labels`` or ``label`` is the labels;
- ``.npy``: the one input;
- an MNIST IDX file, raw or gzip-compressed (any other name): the one input;
- ``.csv`` / ``.parquet``: the numeric columns, in file order, are one float32 input of
  shape (N, features); `label_column` is taken out and returned as the labels;
- a folder of images (png, jpg, jpeg, bmp): ``root/<class>/*.png`` gives labels (the
  index of the class folder in sorted order), a flat folder gives none; each image is
  converted to the model's channels (1: grey, 3: RGB), resized to its height and width,
  and scaled to [0, 1] as float32 (N, C, H, W).

Unsigned bytes (npy, npz, IDX) fed to a float input are pixels and are scaled to [0, 1];
fed to an integer input (token ids) they stay integers. Every array is then checked
against the signature, so a mismatch says what the model takes and what the file holds.
Nothing is unpickled, and a file whose data would not fit in memory is refused before
it is read. `infer_signature(path)` gives the signature a file implies, for data given
without a model signature. `write_outputs(path, array)` writes predictions as .npy or .csv.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jiasu.core.atomic import atomic_path
from jiasu.core.errors import ConfigError, DataError
from jiasu.core.signature import BATCH, InputSignature, InputSpec
from jiasu.data.idx import GZIP_MAGIC
from jiasu.data.images import (
    IMAGE_SUFFIXES,
    channels_of,
    images_in,
    open_image,
    pillow,
    pixels,
    subfolders,
)
from jiasu.data.npz import SAVE_HOW, TARGET_KEYS, read_npz
from jiasu.data.tables import TABLE_SUFFIXES, feature_matrix, read_table, show_columns
from jiasu.hardware.memory import check_fits_in_memory

OUTPUT_SUFFIXES = (".npy", ".csv")
FORMATS = (
    ".npz (arrays by input name), .npy, .csv or .parquet (feature columns), an MNIST IDX "
    "file, or a folder of images"
)
_MEMORY_FIX = "pass fewer inputs at a time"


@dataclasses.dataclass(frozen=True)
class InputData:
    """Inputs read from a file, ready for a model.

    `arrays` are in signature order, each (N, ...) in the signature's dtype; `labels`
    (N,) or None; `names` the input names; `class_names` the class folders of an image
    folder (label i is `class_names[i]`), else None; `source` says what was read.
    """

    arrays: tuple[np.ndarray, ...]
    labels: np.ndarray | None
    source: str
    names: tuple[str, ...]
    class_names: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return int(self.arrays[0].shape[0])


@dataclasses.dataclass(frozen=True)
class _Raw:
    """What a file holds before it meets a signature: named arrays in file order."""

    arrays: dict[str, np.ndarray]
    labels: np.ndarray | None
    kind: str
    class_names: tuple[str, ...] | None = None


def read_inputs(
    path: str | os.PathLike[str],
    signature: InputSignature | None,
    *,
    label_column: str | None = None,
) -> InputData:
    """The inputs (and labels, if the file has them) in `path`, fitted to `signature`.

    With `signature=None` the file's own signature is used (`infer_signature`). Anything
    that does not fit is one `ConfigError` or `DataError` sentence naming the file.

    >>> data = read_inputs("batch.npz", predictor.signature)  # doctest: +SKIP
    >>> predictor.predict_numpy(data.arrays)  # doctest: +SKIP
    """
    path = _existing(path)
    _check_label_column(path, label_column)
    raw = _read_image_folder(path, signature) if path.is_dir() else _read_file(path, label_column)
    if signature is None:
        signature = _signature_of(raw)
    arrays = _fit(raw, signature, path)
    if not arrays[0].shape[0]:
        raise DataError(f"{path} holds no inputs (0 rows); pass at least one")
    labels = raw.labels
    if labels is not None and labels.shape[0] != arrays[0].shape[0]:
        raise DataError(
            f"{path} holds {labels.shape[0]} labels for {arrays[0].shape[0]} inputs; give one "
            "label per input"
        )
    source = f"{path} ({raw.kind}, {arrays[0].shape[0]} inputs)"
    return InputData(arrays, labels, source, signature.names, raw.class_names)


def infer_signature(
    path: str | os.PathLike[str], *, label_column: str | None = None
) -> InputSignature:
    """The signature a file of inputs implies: every non-label array of a .npz in file
    order (by name when there are several), one input for .npy and IDX files,
    float32[B, features] for a table, float32[B, C, H, W] for images (from the first
    image: grey is 1 channel, anything else 3). Unsigned bytes are pixels (float32);
    float64 becomes float32, the dtype models run in; the batch axis is symbolic.

    >>> infer_signature("batch.npz").describe()  # doctest: +SKIP
    'input_ids:int64[B,128], attention_mask:int64[B,128]'
    """
    path = _existing(path)
    _check_label_column(path, label_column)
    raw = _read_image_folder(path, None) if path.is_dir() else _read_file(path, label_column)
    return _signature_of(raw)


def write_outputs(path: str | os.PathLike[str], array: np.ndarray) -> Path:
    """Write predictions atomically: ``.npy`` as they are, or ``.csv`` with one row per
    sample (columns ``out_0, out_1, ...``, or ``class`` for a 1-D integer array); return
    the path. Any other suffix is a `ConfigError`."""
    path = check_output_suffix(path)
    array = np.asarray(array)
    if path.suffix.lower() == ".npy":
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.save(handle, array, allow_pickle=False)
        return path
    if array.ndim == 0:
        raise ConfigError(f"a single number cannot be written to {path}; pass a batch (N, ...)")
    integer = array.dtype.kind in "biu"
    rows = array.reshape(array.shape[0], -1) if array.ndim > 1 else array[:, None]
    if array.ndim == 1 and integer:
        header = "class"
    else:
        header = ",".join(f"out_{i}" for i in range(rows.shape[1]))
    # 9 significant digits round-trip float32, 17 float64
    fmt = "%d" if integer else ("%.17g" if array.dtype == np.float64 else "%.9g")
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as handle:
        np.savetxt(handle, rows.astype(np.int64) if integer else rows, fmt=fmt, delimiter=",",
                   header=header, comments="")  # fmt: skip
    return path


def check_output_suffix(path: str | os.PathLike[str]) -> Path:
    """`path` if `write_outputs` can write it (it ends in .npy or .csv), else `ConfigError`."""
    path = Path(path)
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise ConfigError(
            f"--output {path} must end in .npy or .csv; predictions are written as one of those"
        )
    return path


# --- fitting to a signature ---------------------------------------------------------------


def _fit(raw: _Raw, signature: InputSignature, path: Path) -> tuple[np.ndarray, ...]:
    """`raw`'s arrays in signature order and dtypes; pixels scaled for float inputs."""
    if raw.kind in ("csv", "parquet"):
        _check_table_fits(raw, signature, path)
    named = raw.arrays
    keys = list(named)
    given: Sequence[np.ndarray] | Mapping[str, np.ndarray]
    if len(signature.inputs) == 1 and len(keys) == 1:
        given = [_pixels(named[keys[0]], signature.inputs[0])]
    elif keys == [f"arr_{i}" for i in range(len(keys))] and not set(keys) & set(signature.names):
        # numpy.savez(path, a, b) names them arr_0, arr_1: in order
        given = [_pixels(a, s) for a, s in zip(named.values(), signature.inputs, strict=False)]
        given = [*given, *list(named.values())[len(given) :]]  # too many: check says so
    else:
        specs = {spec.name: spec for spec in signature.inputs}
        given = {k: _pixels(a, specs[k]) if k in specs else a for k, a in named.items()}
    try:
        return signature.check(given if isinstance(given, Mapping) else tuple(given))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _pixels(array: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Unsigned bytes for a float input are pixels: scaled to [0, 1] in float32."""
    if array.dtype == np.uint8 and spec.is_float:
        return array.astype(np.float32) / np.float32(255.0)
    return array


def _signature_of(raw: _Raw) -> InputSignature:
    specs = []
    for name, array in raw.arrays.items():
        if array.ndim == 0:
            raise ConfigError(f"input {name!r} is a single number; pass a batch (N, ...)")
        dtype = array.dtype
        if dtype == np.uint8 or (dtype.kind == "f" and dtype != np.float16):
            dtype = np.dtype(np.float32)  # pixels, or float64 from numpy's defaults
        spec_name = "input" if raw.kind != "npz" else name
        specs.append(InputSpec(spec_name, str(dtype), (BATCH, *array.shape[1:])))
    return InputSignature(tuple(specs), "keyword" if len(specs) > 1 else "positional")


def _check_table_fits(raw: _Raw, signature: InputSignature, path: Path) -> None:
    """A table is one input (N, features): say so in table words when the model differs."""
    features = next(iter(raw.arrays.values())).shape[1]
    spec = signature.inputs[0]
    if len(signature.inputs) != 1 or len(spec.shape) != 2:
        raise ConfigError(
            f"{path} is a table, which gives one input of (rows, feature columns), but the "
            f"model takes {signature.describe()}; pass an .npz with one array per input"
        )
    wanted = spec.shape[1]
    if isinstance(wanted, int) and wanted != features:
        raise ConfigError(
            f"{path} has {features} numeric feature columns, but the model takes {wanted} "
            f"({spec.describe()}); pass a table with those {wanted} columns and name any "
            "label column with --label-column"
        )


# --- files --------------------------------------------------------------------------------


def _existing(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    if not path.exists():
        raise DataError(f"input file {path} does not exist; check the path")
    return path


def _check_label_column(path: Path, label_column: str | None) -> None:
    if label_column is not None and (path.is_dir() or path.suffix.lower() not in TABLE_SUFFIXES):
        raise ConfigError(
            f"--label-column names a column of a .csv or .parquet file, but {path} is not one; "
            "give the labels of other inputs as an .npz array named 'labels'"
        )


def _read_file(path: Path, label_column: str | None) -> _Raw:
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _read_npz(path)
    if suffix == ".npy":
        from jiasu.data.npy import read_npy

        return _Raw({"input": read_npy(path)}, None, "npy")
    if suffix in TABLE_SUFFIXES:
        return _read_table(path, label_column)
    return _read_idx(path)


def _read_idx(path: Path) -> _Raw:
    from jiasu.data.idx import read_idx

    try:
        with open(path, "rb") as handle:
            start = handle.read(2)
    except OSError as exc:
        raise DataError(
            f"{path} cannot be read ({exc.strerror or exc}); check its permissions"
        ) from None
    if start != GZIP_MAGIC and start != b"\x00\x00":
        raise DataError(f"{path} is not a format jiasu reads; pass {FORMATS}")
    return _Raw({"input": read_idx(path)}, None, "idx")


def _read_npz(path: Path) -> _Raw:
    """Every array of an .npz (jiasu.data.npz: numbers only, never a pickle); those named
    like labels are the labels."""
    arrays: dict[str, np.ndarray] = {}
    labels: np.ndarray | None = None
    for key, array in read_npz(path).items():
        if key in TARGET_KEYS:
            labels = _labels(array, path, f"array {key!r}")
        else:
            arrays[key] = array
    if not arrays:
        raise DataError(f"{path} holds no input arrays (only labels or nothing); {SAVE_HOW}")
    return _Raw(arrays, labels, "npz")


def _labels(array: np.ndarray, path: Path, what: str) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != 1 or array.dtype.kind not in "biuf":
        raise DataError(
            f"{path} has {what} of shape {array.shape} and type {array.dtype}; labels are one "
            "number per input (N,)"
        )
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise DataError(f"{path} has {what} with NaN or infinite labels; fill or drop those rows")
    return array


# --- tables -------------------------------------------------------------------------------


def _read_table(path: Path, label_column: str | None) -> _Raw:
    """A .csv or .parquet file: numeric feature columns, in file order, as float32 (N, F)."""
    kind = "csv" if path.suffix.lower() == ".csv" else "parquet"
    frame = read_table(path)
    columns = list(frame.columns)
    if not len(frame):
        raise DataError(f"{path} holds no inputs (0 rows); pass at least one")
    labels = None
    if label_column is not None:
        if label_column not in columns:
            raise ConfigError(
                f"{path} has no column {label_column!r} for --label-column; its columns are "
                f"{show_columns(columns)}"
            )
        column = frame[label_column]
        if column.dtype.kind not in "biuf":
            raise DataError(
                f"{path}'s label column {label_column!r} holds {column.dtype} values such as "
                f"{column.iloc[0]!r}; labels must be numbers (class indices or targets)"
            )
        labels = _labels(column.to_numpy(), path, f"label column {label_column!r}")
        frame = frame.drop(columns=[label_column])
    values = feature_matrix(frame, path, "name it with --label-column")
    return _Raw({"input": values}, labels, kind)


# --- image folders ------------------------------------------------------------------------


def _read_image_folder(root: Path, signature: InputSignature | None) -> _Raw:
    """Images under `root/<class>/` (labelled by class) or directly in `root` (unlabelled),
    converted to the signature's channels and size, float32 (N, C, H, W) in [0, 1]."""
    image = pillow("reading a folder of images")
    files, labels, classes = _image_files(root)
    channels, height, width = _image_layout(root, signature, files[0], image)
    check_fits_in_memory(
        len(files) * channels * height * width * 4, f"{root} holds images of", _MEMORY_FIX
    )
    out = np.empty((len(files), channels, height, width), dtype=np.float32)
    for i, file in enumerate(files):
        with open_image(file, image) as picture:
            out[i] = pixels(picture, image, channels, (height, width))
    label_array = None if labels is None else np.asarray(labels, dtype=np.int64)
    return _Raw({"input": out}, label_array, "images", classes)


def _image_files(root: Path) -> tuple[list[Path], list[int] | None, tuple[str, ...] | None]:
    """The image files, with class indices when they sit in class folders."""
    kinds = ", ".join(IMAGE_SUFFIXES)
    flat = images_in(root)
    folders = subfolders(root)
    if flat and folders:
        raise DataError(
            f"{root} holds both images and folders; put every image in a class folder "
            "(root/<class>/*.png) for labels, or all of them directly in the folder"
        )
    if flat:
        return flat, None, None
    files: list[Path] = []
    labels: list[int] = []
    for index, folder in enumerate(folders):
        found = images_in(folder)
        files += found
        labels += [index] * len(found)
    if not files:
        raise DataError(
            f"{root} holds no images ({kinds}) directly or in class folders; pass a file in one "
            f"of {FORMATS}"
        )
    return files, labels, tuple(p.name for p in folders)


def _image_layout(
    root: Path, signature: InputSignature | None, first: Path, image: Any
) -> tuple[int, int, int]:
    """Channels, height and width: the model's, or the first image's without a signature."""
    if signature is None:
        with open_image(first, image) as picture:
            return channels_of(picture), *picture.size[::-1]
    spec = signature.inputs[0]
    shape = spec.shape
    if (
        len(signature.inputs) != 1
        or len(shape) != 4
        or shape[1] not in (1, 3)
        or not all(isinstance(d, int) for d in shape[2:])
        or not spec.is_float
    ):
        raise ConfigError(
            f"{root} is a folder of images, but the model takes {signature.describe()}, not "
            "one float image input [B,1 or 3,H,W]; pass the inputs as an .npz or .npy"
        )
    return int(shape[1]), int(shape[2]), int(shape[3])
