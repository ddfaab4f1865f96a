"""Downloading MNIST from loopback mirrors: caching, checksums, dead mirrors."""

from __future__ import annotations

import gzip
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from jiasu.core.errors import DataError
from jiasu.data import MnistUnavailableError, load_mnist
from jiasu.data.mnist import FILES, download_mnist

# serve_mirror (conftest) returns a started mirror with `.url` and `.requests`
MirrorFactory = Callable[[Mapping[str, bytes]], Any]


def test_download_then_cached(
    tmp_path: Path, serve_mirror: MirrorFactory, shared_gz_bytes: dict[str, bytes]
) -> None:
    mirror = serve_mirror(shared_gz_bytes)
    cache = tmp_path / "cache"
    messages: list[str] = []
    splits = load_mnist(cache_dir=cache, mirrors=[mirror.url], progress=messages.append)
    assert len(splits.train) == 60000 and len(splits.test) == 10000
    assert sorted(mirror.requests) == sorted(f"/mnist/{name}" for name in shared_gz_bytes)
    assert sorted(p.name for p in cache.iterdir()) == sorted(shared_gz_bytes)
    assert f"downloading train-images-idx3-ubyte.gz from {mirror.url}" in messages[0]
    again = load_mnist(cache_dir=cache, mirrors=[mirror.url])
    assert len(mirror.requests) == 4 and "IDX files in cache" in again.source
    assert (again.train.labels == splits.train.labels).all()


def test_tampered_file_is_rejected_and_leaves_nothing(
    tmp_path: Path, serve_mirror: MirrorFactory, shared_gz_bytes: dict[str, bytes]
) -> None:
    labels = bytearray(gzip.decompress(shared_gz_bytes["train-labels-idx1-ubyte.gz"]))
    labels[100] = (labels[100] + 1) % 10  # still a valid label file, but not MNIST's
    tampered = gzip.compress(bytes(labels))
    mirror = serve_mirror({name: tampered for name in shared_gz_bytes})
    good = serve_mirror(shared_gz_bytes)
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match="fails its checksum") as info:
        load_mnist(cache_dir=cache, mirrors=[mirror.url, good.url])
    message = str(info.value)
    assert f"{mirror.url}train-images-idx3-ubyte.gz" in message
    assert FILES["train-images-idx3-ubyte"] in message
    assert "found " in message and not isinstance(info.value, MnistUnavailableError)
    assert list(cache.iterdir()) == []  # neither a partial nor a final file
    assert good.requests == []  # a wrong file is loud, not retried elsewhere


def test_non_gzip_response_is_rejected(tmp_path: Path, serve_mirror: MirrorFactory) -> None:
    mirror = serve_mirror({f"{name}.gz": b"<html>not here</html>" for name in FILES})
    with pytest.raises(DataError, match="not valid gzip") as info:
        download_mnist(tmp_path / "cache", [mirror.url])
    assert mirror.url in str(info.value)
    assert list((tmp_path / "cache").iterdir()) == []


def test_dead_and_404_mirrors_are_skipped(
    tmp_path: Path,
    serve_mirror: MirrorFactory,
    shared_gz_bytes: dict[str, bytes],
    dead_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    empty = serve_mirror({})
    good = serve_mirror(shared_gz_bytes)
    monkeypatch.setenv("JIASU_MNIST_MIRRORS", f"{dead_url}, {empty.url}, {good.url}")
    splits = load_mnist()  # mirrors from the environment, cache from $JIASU_CACHE_DIR
    assert len(splits.train) == 60000
    assert len(empty.requests) == 4 and len(good.requests) == 4


def test_all_mirrors_dead(isolated_env: Path, dead_url: str, serve_mirror: MirrorFactory) -> None:
    empty = serve_mirror({})
    with pytest.raises(MnistUnavailableError) as info:
        load_mnist(mirrors=[dead_url, empty.url])
    message = str(info.value)
    for hint in ("--data-dir", "JIASU_DATA_DIR", str(isolated_env), dead_url, "HTTP 404"):
        assert hint in message
    assert list(isolated_env.iterdir()) == []


def test_partial_cache_downloads_only_missing(
    isolated_env: Path, serve_mirror: MirrorFactory, shared_gz_bytes: dict[str, bytes]
) -> None:
    isolated_env.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz"):
        (isolated_env / name).write_bytes(shared_gz_bytes[name])
    mirror = serve_mirror(shared_gz_bytes)
    download_mnist(mirrors=[mirror.url])
    assert sorted(mirror.requests) == [
        "/mnist/t10k-labels-idx1-ubyte.gz",
        "/mnist/train-labels-idx1-ubyte.gz",
    ]
