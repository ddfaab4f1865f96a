"""Read and write IDX files, the format MNIST ships in, raw or gzip-compressed.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of
dimensions), one big-endian 32-bit size per dimension, then the values in C order.
Only the unsigned-byte type (0x08), the one MNIST and its look-alikes use, is supported.
Gzip is recognised by its magic bytes (1f 8b), never by the file name. The size a
header declares is checked before anything is allocated or decompressed past it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from jiasu.core.atomic import atomic_path
from jiasu.core.errors import DataError
from jiasu.hardware.memory import check_fits_in_memory, format_bytes

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
# Deflate codes at most 258 bytes per 2-bit symbol pair, so a gzip stream expands at most
# about 1032:1; a header declaring more than that many times the file's size is a lie.
MAX_DEFLATE_RATIO = 1032
_CHUNK = 1 << 22  # read 4 MiB at a time into the destination array
_MAX_EXTRA = 1 << 24  # trailing bytes counted (16 MiB) before a file is called "more than"


def read_idx(path: str | os.PathLike[str], *, sha256: str | None = None) -> np.ndarray:
    """Read an unsigned-byte IDX file, raw or gzip-compressed, into a writable uint8 array.

    The header is read first and the size it declares is checked against the file (a
    gzip stream expands at most ~1032:1) and against the memory available, before
    anything is allocated; decompression then stops after exactly the declared bytes,
    so a small file that claims or expands to gigabytes is refused at once.
    When `sha256` is given, the SHA-256 of the uncompressed content must match it.
    Every problem (missing, unreadable, corrupt gzip, bad header, wrong size, too big,
    wrong checksum) raises `DataError` naming the file.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            header, array = _read_open_file(handle, path)
    except FileNotFoundError:
        raise DataError(f"{path} does not exist; check the path or {_REFETCH}") from None
    except OSError as exc:  # opening failed; read errors are DataErrors already
        raise DataError(
            f"{path} cannot be read ({exc.strerror or exc}); check the path and its permissions"
        ) from exc
    if sha256 is not None:
        digest = hashlib.sha256(header)
        digest.update(array.data)
        actual = digest.hexdigest()
        if actual != sha256.lower():
            raise DataError(
                f"{path} fails its checksum (expected SHA-256 {sha256.lower()}, found {actual}); "
                f"delete it and {_REFETCH}"
            )
    return array.reshape(struct.unpack(f">{header[3]}I", header[4:]))


def _read_open_file(handle: io.BufferedIOBase, path: Path) -> tuple[bytes, np.ndarray]:
    """The header's bytes and the flat payload of an open IDX file, raw or gzip."""
    source, compressed = str(path), False
    try:
        compressed = handle.read(2) == GZIP_MAGIC
        handle.seek(0)
        file_size = os.fstat(handle.fileno()).st_size
        stream: io.BufferedIOBase = (
            gzip.GzipFile(fileobj=handle, mode="rb") if compressed else handle
        )
        header, dims = _read_header(stream, source)
        size = math.prod(dims)
        _check_declared_size(source, size, len(header), file_size, compressed)
        array = np.empty(size, dtype=np.uint8)
        found = _read_into(stream, array.data)
        if found < size:
            raise DataError(
                f"{source} is truncated: expected {size} bytes of data, found {found}; {_REFETCH}"
            )
        extra = _count_rest(stream)
        if extra:
            count = f"more than {_MAX_EXTRA}" if extra > _MAX_EXTRA else str(extra)
            raise DataError(
                f"{source} has {count} extra bytes after the {size} bytes of data its header "
                f"declares; {_REFETCH} or pass the intended IDX file"
            )
    except (OSError, EOFError, zlib.error) as exc:
        if compressed:
            raise DataError(f"{path} is a corrupt gzip file ({exc}); {_REFETCH}") from exc
        raise DataError(
            f"{path} cannot be read ({exc}); check the path and its permissions"
        ) from exc
    return header, array


def _read_header(stream: io.BufferedIOBase, source: str) -> tuple[bytes, tuple[int, ...]]:
    """The IDX header's bytes (magic and sizes) and the dimensions it declares."""
    magic = _read_exactly(stream, 4)
    if len(magic) < 4:
        raise DataError(
            f"{source} is truncated: expected an IDX header of at least 4 bytes, "
            f"found {len(magic)}; {_REFETCH}"
        )
    if magic[0] != 0 or magic[1] != 0:
        raise DataError(
            f"{source} is not an IDX file (it starts with bytes {magic[:2].hex(' ')}, "
            f"expected 00 00); pass an MNIST-format IDX file, raw or gzip-compressed"
        )
    type_code, ndim = magic[2], magic[3]
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
    sizes = _read_exactly(stream, 4 * ndim)
    if len(sizes) < 4 * ndim:
        raise DataError(
            f"{source} is truncated: expected an IDX header of {4 + 4 * ndim} bytes for {ndim} "
            f"dimensions, found {4 + len(sizes)}; {_REFETCH}"
        )
    return magic + sizes, struct.unpack(f">{ndim}I", sizes)


def _check_declared_size(
    source: str, size: int, header: int, file_size: int, compressed: bool
) -> None:
    """Refuse a declared payload the file cannot hold or memory cannot take, before allocating."""
    if not compressed:
        found = file_size - header
        if found < size:
            raise DataError(
                f"{source} is truncated: expected {size} bytes of data, found {found}; {_REFETCH}"
            )
        if found > size:
            raise DataError(
                f"{source} has {found - size} extra bytes after the {size} bytes of data "
                f"its header declares; {_REFETCH} or pass the intended IDX file"
            )
    elif size > file_size * MAX_DEFLATE_RATIO:
        raise DataError(
            f"{source} is truncated: its header declares {size} bytes of data "
            f"({format_bytes(size)}), more than a gzip file of {file_size} bytes can hold; "
            f"{_REFETCH}"
        )
    check_fits_in_memory(size, f"{source} declares data of", "free memory or pass a smaller file")


def _count_rest(stream: io.BufferedIOBase) -> int:
    """Bytes left in `stream`, read and dropped a chunk at a time, counting at most
    `_MAX_EXTRA` + 1: memory stays constant, a gzip bomb's tail costs milliseconds, and a
    damaged gzip stream still reaches its CRC check (an OSError) when it ends sooner."""
    count = 0
    while count <= _MAX_EXTRA and (chunk := stream.read(min(_CHUNK, _MAX_EXTRA + 1 - count))):
        count += len(chunk)
    return count


def _read_exactly(stream: io.BufferedIOBase, n: int) -> bytes:
    """Up to `n` bytes (fewer only at the end of the stream)."""
    chunks, got = [], 0
    while got < n:
        chunk = stream.read(n - got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _read_into(stream: io.BufferedIOBase, buffer: memoryview) -> int:
    """Fill `buffer` from `stream`; return the bytes read (fewer only at the end of the stream)."""
    got = 0
    while got < len(buffer):
        n = stream.readinto(buffer[got : got + _CHUNK])
        if not n:
            break
        got += n
    return got


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
