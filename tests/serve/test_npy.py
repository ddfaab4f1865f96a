"""The server's `.npy` fast path reads and writes exactly what numpy does, and leaves to
`np.load` every body it does not handle (so numpy's checks and errors stay in force)."""

from __future__ import annotations

import io

import numpy as np
import pytest

from jiasu.serve.npy import read_npy, write_npy


def _saved(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "array",
    [
        np.random.default_rng(0).standard_normal((1, 1, 28, 28)).astype(np.float32),
        np.arange(10, dtype=np.int64).reshape(2, 5),
        np.zeros((0, 3), np.float32),
        np.array(3.5),
        np.ones((2, 2), ">f4"),  # big-endian: kept as sent
        np.array([[True, False]]),
    ],
)
def test_a_plain_npy_reads_and_writes_as_numpy_does(array: np.ndarray) -> None:
    body = _saved(array)
    got = read_npy(body)
    assert got is not None and got.dtype == array.dtype and got.shape == array.shape
    np.testing.assert_array_equal(got, array)
    assert got.flags.writeable  # a copy, not a view of the request's bytes
    assert write_npy(array) == body
    assert read_npy(body) is not None  # the second time from the remembered header


def test_a_bytearray_body_is_read_as_a_writable_view_without_a_copy() -> None:
    array = np.random.default_rng(1).standard_normal((2, 3, 4)).astype(np.float32)
    body = bytearray(_saved(array))
    got = read_npy(body)
    assert got is not None and got.flags.writeable
    np.testing.assert_array_equal(got, array)
    assert np.shares_memory(got, np.frombuffer(body, np.uint8))  # the server's one copy
    from_bytes = read_npy(bytes(body))
    assert from_bytes is not None and not np.shares_memory(from_bytes, got)


def test_bodies_the_fast_path_does_not_handle_go_to_numpy() -> None:
    fortran = np.asfortranarray(np.ones((2, 3)))
    structured = np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")])
    npz = io.BytesIO()
    np.savez(npz, x=np.ones(2))
    full = _saved(np.ones((1, 4), np.float32))
    for body in (_saved(fortran), _saved(structured), npz.getvalue(), b"junk", full[:-2]):
        assert read_npy(body) is None
    assert read_npy(full + b"xx") is None  # more data than its header says
    with pytest.raises(ValueError):  # and numpy then says what is wrong
        np.load(io.BytesIO(full[:-2]), allow_pickle=False)
    assert write_npy(fortran) == _saved(np.ascontiguousarray(fortran))
