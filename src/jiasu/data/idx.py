"""Read and write IDX files, the format MNIST ships in, raw or gzip-compressed.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of
dimensions), one big-endian 32-bit size per dimension, then the values in C order.
Only the unsigned-byte type (0x08), the one MNIST and its look-alikes use, is supported.
Gzip is recognised by its magic bytes (1f 8b), never by the file name.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from jiasu.core.atomic import atomic_path
from jiasu.core.errors import DataError

GZIP_MAGIC = b"\x1f\x8b"
UBYTE_TYPE_CODE = 0x08
_TYPE_NAMES = {
    0x08: "unsigned byte",
    0x09: "signed byte",
    0x0B: "16-bit integer",
    0x0C: "32-bit integer",
    0x0D: "32-bit float",
    0x0E: "64-bit float",
}
_REFETCH = "download or copy the file again"


def read_idx_bytes(path: str | os.PathLike[str]) -> bytes:
    """Return the content of `path`, decompressed when it starts with the gzip magic bytes."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path} does not exist; check the path or {_REFETCH}") from None
    except OSError as exc:
        raise DataError(
            f"{path} cannot be read ({exc.strerror or exc}); check the path and its permissions"
        ) from exc
    if raw[:2] != GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path} is a corrupt gzip file ({exc}); {_REFETCH}") from exc


def sha256_hex(data: bytes) -> str:
    """Return the SHA-256 of `data` as lowercase hex."""
    return hashlib.sha256(data).hexdigest()


def parse_idx(data: bytes, source: str) -> np.ndarray:
    """Parse uncompressed IDX `data`; `source` names the file in error messages."""
    if len(data) < 4:
        raise DataError(
            f"{source} is truncated: expected an IDX header of at least 4 bytes, "
            f"found {len(data)}; {_REFETCH}"
        )
    if data[0] != 0 or data[1] != 0:
        raise DataError(
            f"{source} is not an IDX file (it starts with bytes {data[:2].hex(' ')}, "
            f"expected 00 00); pass an MNIST-format IDX file, raw or gzip-compressed"
        )
    type_code, ndim = data[2], data[3]
    if type_code != UBYTE_TYPE_CODE:
        kind = _TYPE_NAMES.get(type_code, "unknown")
        raise DataError(
            f"{source} has IDX type code 0x{type_code:02X} ({kind}), which is unsupported; "
            f"only unsigned-byte (0x08) IDX files such as MNIST's can be read"
        )
    if ndim == 0:
        raise DataError(
            f"{source} declares 0 dimensions in its IDX header; {_REFETCH} "
            f"or pass an IDX file with at least one dimension"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(
            f"{source} is truncated: expected an IDX header of {header} bytes for {ndim} "
            f"dimensions, found {len(data)}; {_REFETCH}"
        )
    dims = struct.unpack(f">{ndim}I", data[4:header])
    expected = math.prod(dims)
    found = len(data) - header
    if found < expected:
        raise DataError(
            f"{source} is truncated: expected {expected} bytes of data, found {found}; {_REFETCH}"
        )
    if found > expected:
        raise DataError(
            f"{source} has {found - expected} extra bytes after the {expected} bytes of data "
            f"its header declares; {_REFETCH} or pass the intended IDX file"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims).copy()


def read_idx(path: str | os.PathLike[str], *, sha256: str | None = None) -> np.ndarray:
    """Read an unsigned-byte IDX file, raw or gzip-compressed, into a writable uint8 array.

    When `sha256` is given, the SHA-256 of the uncompressed content must match it.
    Every problem (missing, unreadable, corrupt gzip, bad header, wrong size, wrong
    checksum) raises `DataError` naming the file.
    """
    data = read_idx_bytes(path)
    if sha256 is not None:
        actual = sha256_hex(data)
        if actual != sha256.lower():
            raise DataError(
                f"{path} fails its checksum (expected SHA-256 {sha256.lower()}, found {actual}); "
                f"delete it and {_REFETCH}"
            )
    return parse_idx(data, str(path))


def encode_idx(array: np.ndarray) -> bytes:
    """Return the uncompressed IDX encoding of a uint8 `array`."""
    arr = np.asarray(array)
    if arr.dtype != np.uint8:
        raise DataError(
            f"cannot encode a {arr.dtype} array as IDX; only unsigned bytes are supported, "
            f"so convert it with array.astype(numpy.uint8) after checking its range"
        )
    if not 1 <= arr.ndim <= 255 or any(d > 0xFFFFFFFF for d in arr.shape):
        raise DataError(
            f"cannot encode an array of shape {arr.shape} as IDX; it needs 1 to 255 "
            f"dimensions of at most 2**32 - 1 each"
        )
    header = struct.pack(f">BBBB{arr.ndim}I", 0, 0, UBYTE_TYPE_CODE, arr.ndim, *arr.shape)
    return header + np.ascontiguousarray(arr).tobytes()


def write_idx(
    path: str | os.PathLike[str], array: np.ndarray, *, compress: bool | None = None
) -> Path:
    """Write a uint8 `array` to `path` as IDX, atomically; return the path.

    `compress=None` gzips when the name ends in ``.gz``; True or False forces it.
    The gzip stream carries no timestamp, so equal arrays give equal files.
    """
    path = Path(path)
    data = encode_idx(array)
    if compress is None:
        compress = path.suffix == ".gz"
    if compress:
        data = gzip.compress(data, compresslevel=6, mtime=0)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path
