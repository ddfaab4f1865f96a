"""`.npy` bodies read and written without `np.load`/`np.save` on every request.

A server sees the same few headers over and over (one per request shape), and `np.load`
parses each with `ast.literal_eval`: at ~1,900 requests/s that was 11% of a server's
samples (py-spy, MNIST CNN). Here a header is parsed once, by numpy's own safe parser
(`numpy.lib.format.read_array_header_*`), and remembered; the data is then a copy out of
the body. Anything unusual (object or structured dtypes, Fortran order, version 3, a body
whose length does not match its header) is left to `np.load(allow_pickle=False)`, so what
is accepted and the errors raised are numpy's.

>>> import io, numpy as np
>>> buffer = io.BytesIO(); np.save(buffer, np.arange(6, dtype=np.float32).reshape(2, 3))
>>> read_npy(buffer.getvalue()).tolist()
[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
>>> saved = io.BytesIO(); np.save(saved, np.ones((1, 2), np.float32))
>>> write_npy(np.ones((1, 2), np.float32)) == saved.getvalue()
True
"""

from __future__ import annotations

import functools
import io
import struct

import numpy as np

MAGIC = b"\x93NUMPY"
CACHED_HEADERS = 256  # distinct request headers remembered (each a dtype and a shape)


def read_npy(body: bytes | bytearray) -> np.ndarray | None:
    """The array in an `.npy` body (a writable array: a view of a bytearray `body`, else a
    copy), or None when `body` is not a plain `.npy` of a numeric C-order array (an
    `.npz`, say): then use `np.load`."""
    if not body.startswith(MAGIC) or len(body) < 10:
        return None
    major = body[6]
    if major == 1:
        (length,) = struct.unpack_from("<H", body, 8)
        start = 10
    elif major == 2:
        if len(body) < 12:
            return None
        (length,) = struct.unpack_from("<I", body, 8)
        start = 12
    else:
        return None
    header = bytes(body[: start + length])  # hashable: the parsed headers are remembered
    parsed = _header(header)
    if parsed is None:
        return None
    dtype, shape, count = parsed
    if len(body) - len(header) != count * dtype.itemsize:
        return None  # truncated or padded: np.load says which
    array = np.frombuffer(body, dtype, count, len(header)).reshape(shape)
    # A view of a bytearray is writable already; one of bytes is not (the server passes a
    # bytearray: a 600 kB copy after a long model call costs ~0.07 ms, caches cold).
    return array if isinstance(body, bytearray) else array.copy()


@functools.lru_cache(maxsize=CACHED_HEADERS)
def _header(header: bytes) -> tuple[np.dtype, tuple[int, ...], int] | None:
    """(dtype, shape, element count) of a numeric C-order array's header, else None."""
    read = {1: np.lib.format.read_array_header_1_0, 2: np.lib.format.read_array_header_2_0}
    try:
        shape, fortran, dtype = read[header[6]](io.BytesIO(header[8:]), max_header_size=10_000)
    except Exception:
        return None
    if fortran or dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
        return None
    return dtype, tuple(int(n) for n in shape), int(np.prod(shape, dtype=np.int64))


def write_npy(array: np.ndarray) -> bytes:
    """`np.save`'s bytes for `array` (C order), the header made once per dtype and shape."""
    if not array.flags.c_contiguous:
        array = np.ascontiguousarray(array)  # (not for 0-d arrays: it makes them 1-d)
    return _npy_header(array.dtype.str, array.shape) + array.tobytes()


@functools.lru_cache(maxsize=CACHED_HEADERS)
def _npy_header(descr: str, shape: tuple[int, ...]) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": descr, "fortran_order": False, "shape": shape}
    )
    return buffer.getvalue()
