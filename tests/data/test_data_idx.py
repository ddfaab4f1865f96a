"""IDX reading and writing: round trips, gzip detection, and every kind of corrupt file."""

from __future__ import annotations

import gzip
import re
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from jiasu.core.errors import DataError
from jiasu.data import read_idx, write_idx


def _idx(dims: tuple[int, ...], payload: bytes, type_code: int = 0x08) -> bytes:
    return struct.pack(f">BBBB{len(dims)}I", 0, 0, type_code, len(dims), *dims) + payload


@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 28, 28), (2, 1, 3, 5)])
@pytest.mark.parametrize("compress", [False, True])
def test_round_trip(tmp_path: Path, shape: tuple[int, ...], compress: bool) -> None:
    array = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    path = write_idx(tmp_path / "a.idx", array, compress=compress)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") is compress
    result = read_idx(path)
    assert result.dtype == np.uint8 and result.shape == shape
    np.testing.assert_array_equal(result, array)
    assert result.flags.writeable


def test_gzip_detected_by_magic_not_name(tmp_path: Path) -> None:
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    gz_named_raw = write_idx(tmp_path / "raw-but-named.gz", array, compress=False)
    raw_named_gz = write_idx(tmp_path / "gzip-but-named.idx", array, compress=True)
    np.testing.assert_array_equal(read_idx(gz_named_raw), array)
    np.testing.assert_array_equal(read_idx(raw_named_gz), array)


def test_write_infers_gzip_from_suffix_and_is_deterministic(tmp_path: Path) -> None:
    array = np.ones((2, 2), dtype=np.uint8)
    first = write_idx(tmp_path / "x.gz", array).read_bytes()
    assert first[:2] == b"\x1f\x8b"
    assert write_idx(tmp_path / "y.gz", array).read_bytes() == first
    assert write_idx(tmp_path / "plain", array).read_bytes() == _idx((2, 2), b"\x01" * 4)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_write_rejects_non_uint8(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="uint8"):
        write_idx(tmp_path / "x", np.zeros(3, dtype=np.int64))
    assert not (tmp_path / "x").exists()


def test_raw_and_gzip_real_mnist_are_identical(shared_mnist: Path, tmp_path: Path) -> None:
    gz_path = shared_mnist / "t10k-images-idx3-ubyte.gz"
    raw_path = tmp_path / "t10k-images-idx3-ubyte"
    raw_path.write_bytes(gzip.decompress(gz_path.read_bytes()))
    from_gz, from_raw = read_idx(gz_path), read_idx(raw_path)
    assert from_gz.shape == (10000, 28, 28)
    np.testing.assert_array_equal(from_gz, from_raw)


CORRUPT = {
    "wrong_magic": (b"\x01\x02\x08\x01\x00\x00\x00\x01\x05", "not an IDX file"),
    "unsupported_type": (_idx((2,), b"\x00" * 8, type_code=0x0D), "0x0D.*unsupported"),
    "truncated_data": (_idx((2, 5), b"\x00" * 7), "truncated: expected 10 bytes of data, found 7"),
    "extra_bytes": (_idx((3,), b"\x00" * 5), "2 extra bytes after the 3 bytes of data"),
    "short_header": (b"\x00\x00", "truncated"),
    "truncated_dims": (b"\x00\x00\x08\x03\x00\x00\x00\x02", "truncated"),
    "zero_dims": (b"\x00\x00\x08\x00", "0 dimensions"),
    "empty": (b"", "truncated"),
}


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("case", sorted(CORRUPT))
def test_corrupt_files_name_the_file(tmp_path: Path, case: str, compress: bool) -> None:
    payload, pattern = CORRUPT[case]
    path = tmp_path / f"{case}-file"
    path.write_bytes(gzip.compress(payload) if compress else payload)
    with pytest.raises(DataError, match=pattern) as info:
        read_idx(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda gz: gz[: len(gz) // 2], id="truncated_stream"),
        pytest.param(lambda gz: gz[:20] + bytes(b ^ 0xFF for b in gz[20:40]) + gz[40:], id="flip"),
        pytest.param(lambda gz: gz[:-8] + b"\x00" * 8, id="bad_crc"),
        pytest.param(lambda gz: b"\x1f\x8b" + b"garbage", id="bad_header"),
    ],
)
def test_corrupt_gzip_names_the_file(tmp_path: Path, damage: Callable[[bytes], bytes]) -> None:
    good = gzip.compress(_idx((64, 64), bytes(range(256)) * 16))
    path = tmp_path / "labels.gz"
    path.write_bytes(damage(good))
    with pytest.raises(DataError, match="corrupt gzip") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_missing_file_and_checksum(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist") as info:
        read_idx(tmp_path / "nope")
    assert str(tmp_path / "nope") in str(info.value)
    path = write_idx(tmp_path / "a", np.zeros(4, dtype=np.uint8))
    with pytest.raises(
        DataError, match=re.escape(str(path)) + r".*fails its checksum.*expected SHA-256 0+,"
    ):
        read_idx(path, sha256="0" * 64)
