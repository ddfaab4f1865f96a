"""Read a .npz archive of numbers safely: every header first, sizes checked, never a pickle.

Each member's header (dtype, shape) is checked before any array is read: numbers only
(bool, integers, floats), a declared size within the member's bytes, and all of them
together within the memory available.
"""

from __future__ import annotations

import math
import os
import zipfile
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

from jiasu.core.errors import DataError
from jiasu.hardware.memory import check_fits_in_memory

TARGET_KEYS = ("y", "labels", "label")  # the .npz arrays that hold targets, not inputs
SAVE_HOW = "save the inputs with numpy.savez(path, name=array, ...) from arrays of numbers"
_MEMORY_FIX = "pass fewer inputs at a time"


def read_npz(path: str | os.PathLike[str], *, how: str = SAVE_HOW) -> dict[str, np.ndarray]:
    """Every array of the .npz at `path` by name, in archive order; anything else is a
    `DataError` naming the file and ending with `how` (what the user should do)."""
    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            declared = sum(_member_size(archive, info, path, how) for info in members)
            check_fits_in_memory(declared, f"{path} holds arrays of", _MEMORY_FIX)
            for info in members:
                with archive.open(info) as handle:
                    array = npy_format.read_array(handle, allow_pickle=False)
                arrays[info.filename.removesuffix(".npy")] = np.asarray(array)
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"input file {path} does not exist; check the path") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path} is not a readable .npz archive of arrays ({exc}); {how}") from None
    return arrays


def _member_size(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path, how: str) -> int:
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
