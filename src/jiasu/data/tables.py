"""Tables (.csv, .parquet) as pandas frames, and their numeric feature columns as one array.

Shared by the readers of inputs for `predict` (jiasu.data.inputs) and of training data
(jiasu.data.training). A table whose data would not fit in memory is refused before it
is read; a CSV without a header row gets columns named 0, 1, ...
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from jiasu.core.errors import DataError
from jiasu.core.extras import require
from jiasu.hardware.memory import check_fits_in_memory

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")
_MEMORY_FIX = "pass fewer rows at a time"
# A CSV value takes at least 2 characters ("0,"); pandas parses it to 8 bytes (float64).
_CSV_BYTES_PER_CHAR = 4


def read_table(path: Path) -> Any:
    """The .csv or .parquet file at `path` as a pandas DataFrame with string column names;
    an unreadable file is a `DataError`, a missing pandas/pyarrow a `MissingExtraError`."""
    purpose = f"reading {path.suffix} files"
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
    except DataError:
        raise
    except Exception as exc:  # pandas and pyarrow raise many types for a bad file
        kind = "Parquet" if parquet else "CSV"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(
            f"{path} is not a readable {kind} table ({first}); check the file"
        ) from None
    frame.columns = [str(c) for c in frame.columns]
    return frame


def show_columns(columns: Any, limit: int = 8) -> str:
    """Column names for a message: ``a, b, c, ...`` (the first `limit`)."""
    names = [str(c) for c in columns]
    return ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")


def feature_matrix(frame: Any, path: Path, label_hint: str) -> np.ndarray:
    """Every column of `frame` as float32 (N, features), in file order. Columns that are
    not numbers are one `DataError` naming them (`label_hint`, if any, says how to name a
    label column, e.g. "name it with --label-column"); so are missing or infinite values."""
    if not len(frame.columns):
        raise DataError(f"{path} has no feature columns; pass a table with numeric features")
    text = [name for name in frame.columns if frame[name].dtype.kind not in "biuf"]
    if text:
        column = frame[text[0]]
        example = column.dropna().iloc[0] if column.notna().any() else None
        names = ", ".join(repr(n) for n in text[:8]) + (", ..." if len(text) > 8 else "")
        which = f"column {names} holds" if len(text) == 1 else f"columns {names} hold"
        them = "it" if len(text) == 1 else "them"
        raise DataError(
            f"{path}'s {which} {column.dtype} values such as {example!r}, not numbers; encode "
            f"{them} as numbers or drop {them}" + (f", or {label_hint}" if label_hint else "")
        )
    values = frame.to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise DataError(
            f"{path} has {int(bad.sum())} missing, NaN or infinite values (the first in row "
            f"{row + 1}, column {frame.columns[col]!r}); fill or drop them"
        )
    return values.astype(np.float32)


def _is_number(text: object) -> bool:
    try:
        float(str(text))
    except ValueError:
        return False
    return True
