"""The user's inputs, from any file jiasu reads, as arrays that fit a model's signature.

`read_inputs(path, signature)` reads one of:

- ``.npz``: one array per input, by the input's name (a single array fills a one-input
  model whatever its key; ``arr_0, arr_1, ...`` from ``numpy.savez(path, a, b)`` fill the
  inputs in order); an array named ``labels`` (or ``label``) is the labels;
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
import math
import os
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib import format as npy_format

from jiasu.core.atomic import atomic_path
from jiasu.core.errors import ConfigError, DataError
from jiasu.core.extras import require
from jiasu.core.signature import BATCH, InputSignature, InputSpec
from jiasu.data.idx import GZIP_MAGIC
from jiasu.hardware.memory import check_fits_in_memory

LABEL_KEYS = ("labels", "label")  # the .npz arrays that hold labels, not inputs
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
TABLE_SUFFIXES = (".csv", ".parquet", ".pq")
OUTPUT_SUFFIXES = (".npy", ".csv")
FORMATS = (
    ".npz (arrays by input name), .npy, .csv or .parquet (feature columns), an MNIST IDX "
    "file, or a folder of images"
)
_MEMORY_FIX = "pass fewer inputs at a time"
# A CSV value takes at least 2 characters ("0,"); pandas parses it to 8 bytes (float64).
_CSV_BYTES_PER_CHAR = 4


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
    """Every array of an .npz, headers checked first: numbers only, sizes within the file
    and within memory, never a pickle."""
    how = "save the inputs with numpy.savez(path, name=array, ...) from arrays of numbers"
    arrays: dict[str, np.ndarray] = {}
    labels: np.ndarray | None = None
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            declared = 0
            for info in members:
                declared += _npz_member_size(archive, info, path, how)
            check_fits_in_memory(declared, f"{path} holds arrays of", _MEMORY_FIX)
            for info in members:
                with archive.open(info) as handle:
                    array = npy_format.read_array(handle, allow_pickle=False)
                key = info.filename.removesuffix(".npy")
                if key in LABEL_KEYS:
                    labels = _labels(array, path, f"array {key!r}")
                else:
                    arrays[key] = np.asarray(array)
    except DataError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path} is not a readable .npz archive of arrays ({exc}); {how}") from None
    if not arrays:
        raise DataError(f"{path} holds no input arrays (only labels or nothing); {how}")
    return _Raw(arrays, labels, "npz")


def _npz_member_size(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path, how: str) -> int:
    """The bytes one .npz member's header declares, after checking it holds numbers."""
    if not info.filename.endswith(".npy"):
        raise DataError(f"{path} holds {info.filename!r}, which is not a .npy array; {how}")
    with archive.open(info) as handle:
        version = npy_format.read_magic(handle)
        if version not in ((1, 0), (2, 0)):
            raise DataError(f"{path} holds {info.filename!r} in .npy format {version}; {how}")
        read_header = (
            npy_format.read_array_header_1_0
            if version == (1, 0)
            else npy_format.read_array_header_2_0
        )
        shape, _, dtype = read_header(handle)
    if dtype.hasobject or dtype.kind not in "biuf":
        raise DataError(
            f"{path} holds {info.filename.removesuffix('.npy')!r} of type {dtype}, not numbers "
            f"(jiasu never unpickles objects); {how}"
        )
    size = math.prod(shape) * dtype.itemsize
    if size > info.file_size:
        raise DataError(
            f"{path} is damaged: {info.filename!r} declares shape {tuple(shape)} but holds "
            f"{info.file_size} bytes; {how}"
        )
    return size


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
    purpose = f"reading {path.suffix} inputs"
    pd = require("pandas", extra="tabular", purpose=purpose)
    parquet = path.suffix.lower() != ".csv"
    try:
        if parquet:
            require("pyarrow", extra="tabular", purpose=purpose)
            import pyarrow.parquet as pq

            meta = pq.read_metadata(path)
            declared = meta.num_rows * meta.num_columns * 8
            check_fits_in_memory(declared, f"{path} holds a table of", _MEMORY_FIX)
            frame = pd.read_parquet(path)
        else:
            declared = path.stat().st_size * _CSV_BYTES_PER_CHAR
            check_fits_in_memory(declared, f"{path} holds a table of about", _MEMORY_FIX)
            frame = pd.read_csv(path)
            if len(frame.columns) and all(_is_number(c) for c in frame.columns):
                frame = pd.read_csv(path, header=None)  # no header row: columns 0, 1, ...
                frame.columns = [str(c) for c in frame.columns]
    except DataError:
        raise
    except Exception as exc:  # pandas and pyarrow raise many types for a bad file
        kind = "Parquet" if parquet else "CSV"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(
            f"{path} is not a readable {kind} table ({first}); check the file"
        ) from None
    return _from_frame(frame, path, label_column, "parquet" if parquet else "csv")


def _from_frame(frame: Any, path: Path, label_column: str | None, kind: str) -> _Raw:
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    if not len(frame):
        raise DataError(f"{path} holds no inputs (0 rows); pass at least one")
    labels = None
    if label_column is not None:
        if label_column not in columns:
            shown = ", ".join(columns[:8]) + (", ..." if len(columns) > 8 else "")
            raise ConfigError(
                f"{path} has no column {label_column!r} for --label-column; its columns are {shown}"
            )
        column = frame[label_column]
        if column.dtype.kind not in "biuf":
            raise DataError(
                f"{path}'s label column {label_column!r} holds {column.dtype} values such as "
                f"{column.iloc[0]!r}; labels must be numbers (class indices or targets)"
            )
        labels = _labels(column.to_numpy(), path, f"label column {label_column!r}")
        frame = frame.drop(columns=[label_column])
    if not len(frame.columns):
        raise DataError(f"{path} has no feature columns; pass a table with numeric features")
    for name in frame.columns:
        column = frame[name]
        if column.dtype.kind not in "biuf":
            example = column.dropna().iloc[0] if column.notna().any() else None
            raise DataError(
                f"{path} has column {name!r} holding {column.dtype} values such as {example!r}, "
                "not numbers; encode it as numbers, drop it, or name it with --label-column"
            )
    values = frame.to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise DataError(
            f"{path} has {int(bad.sum())} missing, NaN or infinite values (the first in row "
            f"{row + 1}, column {frame.columns[col]!r}); fill or drop them"
        )
    return _Raw({"input": values.astype(np.float32)}, labels, kind)


def _is_number(text: object) -> bool:
    try:
        float(str(text))
    except ValueError:
        return False
    return True


# --- image folders ------------------------------------------------------------------------


def _read_image_folder(root: Path, signature: InputSignature | None) -> _Raw:
    """Images under `root/<class>/` (labelled by class) or directly in `root` (unlabelled),
    converted to the signature's channels and size, float32 (N, C, H, W) in [0, 1]."""
    image = require("PIL.Image", extra="images", purpose="reading a folder of images")
    files, labels, classes = _image_files(root)
    channels, height, width = _image_layout(root, signature, files[0], image)
    check_fits_in_memory(
        len(files) * channels * height * width * 4, f"{root} holds images of", _MEMORY_FIX
    )
    mode = "L" if channels == 1 else "RGB"
    out = np.empty((len(files), channels, height, width), dtype=np.float32)
    for i, file in enumerate(files):
        with _open_image(file, image) as picture:
            converted = picture.convert(mode)
            if converted.size != (width, height):
                converted = converted.resize((width, height), image.Resampling.BILINEAR)
            pixels = np.asarray(converted, dtype=np.float32) / np.float32(255.0)
        out[i] = pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)
    label_array = None if labels is None else np.asarray(labels, dtype=np.int64)
    return _Raw({"input": out}, label_array, "images", classes)


def _image_files(root: Path) -> tuple[list[Path], list[int] | None, tuple[str, ...] | None]:
    """The image files, with class indices when they sit in class folders."""

    def images_in(folder: Path) -> list[Path]:
        return sorted(
            p
            for p in folder.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
        )

    kinds = ", ".join(IMAGE_SUFFIXES)
    flat = images_in(root)
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
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
        with _open_image(first, image) as picture:
            return (1 if picture.mode in ("1", "L", "I", "I;16", "F") else 3), *picture.size[::-1]
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


def _open_image(path: Path, image: Any) -> Any:
    try:
        picture = image.open(path)
        picture.load()  # decode now, so a damaged file fails here
    except image.DecompressionBombError as exc:
        raise DataError(f"{path} is too large an image ({exc}); resize it first") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} is not a readable image ({exc}); replace or remove it") from None
    return picture
