"""Read a .npy array of numbers safely: header first, sizes checked, never a pickle.

A .npy file is a magic string, a version, a small text header (dtype, order, shape)
and the raw values. The header's shape is checked against the bytes the file really
holds and against the memory available before the array is allocated, so a 200-byte
file claiming 10^12 rows is refused at once.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

from jiasu.core.errors import DataError
from jiasu.hardware.memory import check_fits_in_memory, format_bytes

_SAVE_HOW = "save it with numpy.save(path, array) from an array of numbers"


def read_npy(path: str | os.PathLike[str]) -> np.ndarray:
    """The array in a .npy file of numbers (bool, integers or floats); anything else is a
    `DataError` naming the file: a pickle or object array, a truncated file, or a shape
    whose data would not fit in the file or in memory.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            shape, dtype = _read_header(handle, path)
            declared = math.prod(shape) * dtype.itemsize
            holds = os.fstat(handle.fileno()).st_size - handle.tell()
            _check_size(path, shape, dtype, declared, holds)
            handle.seek(0)
            array = npy_format.read_array(handle, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"input file {path} does not exist; check the path") from None
    except DataError:
        raise
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(
            f"{path} is not a readable .npy array of numbers ({exc}); {_SAVE_HOW}"
        ) from None
    return np.asarray(array)


def _read_header(handle: object, path: Path) -> tuple[tuple[int, ...], np.dtype]:
    version = npy_format.read_magic(handle)  # type: ignore[arg-type]
    if version == (1, 0):
        shape, _, dtype = npy_format.read_array_header_1_0(handle)  # type: ignore[arg-type]
    elif version == (2, 0):
        shape, _, dtype = npy_format.read_array_header_2_0(handle)  # type: ignore[arg-type]
    else:
        raise DataError(
            f"{path} is a .npy file of format version {version[0]}.{version[1]}, which holds "
            f"named fields; pass a plain array of numbers ({_SAVE_HOW})"
        )
    if dtype.hasobject or dtype.kind not in "biuf":
        raise DataError(
            f"{path} holds values of type {dtype} (kind {dtype.kind!r}), not numbers; "
            f"pass images as floats or unsigned bytes ({_SAVE_HOW})"
        )
    return tuple(int(d) for d in shape), dtype


def _check_size(
    path: Path, shape: tuple[int, ...], dtype: np.dtype, declared: int, holds: int
) -> None:
    if declared > holds:
        raise DataError(
            f"{path} is truncated: its header declares an array of shape {shape} and type "
            f"{dtype} ({format_bytes(declared)}), but the file holds {format_bytes(holds)} "
            f"of data; {_SAVE_HOW}"
        )
    check_fits_in_memory(declared, f"{path} holds an array of", "pass fewer inputs at a time")
