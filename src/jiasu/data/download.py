"""Fetch a gzip file from a list of mirrors into a folder, verified by checksum, with urllib.

The download goes to a temporary file beside its final name and is renamed into place
only after the SHA-256 of its uncompressed content matches; on any failure nothing is
left behind, not even a partial file.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

from jiasu._version import __version__
from jiasu.core.atomic import atomic_path
from jiasu.core.errors import DataError
from jiasu.data.idx import GZIP_MAGIC

Progress = Callable[[str], None]

_NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError)
_CHUNK = 1 << 20


class AllMirrorsFailed(Exception):
    """Every mirror failed with a network error; `failures` holds (url, reason) pairs."""

    def __init__(self, filename: str, failures: list[tuple[str, str]]) -> None:
        super().__init__(f"{filename}: " + ", ".join(f"{u}: {r}" for u, r in failures))
        self.filename = filename
        self.failures = failures


def mirror_url(mirror: str, filename: str) -> str:
    """Join a mirror base URL and a file name."""
    return mirror.rstrip("/") + "/" + filename


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__


def _gunzip_sha256(path: Path, url: str) -> str:
    """The SHA-256 of a downloaded gzip file's content, decompressed a chunk at a time.

    Memory stays constant whatever the file expands to (a hostile mirror's gzip bomb
    costs time, never memory); an invalid file raises DataError naming its URL.
    """
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as raw:
            start = raw.read(2)
            if start != GZIP_MAGIC:
                raise OSError(f"it starts with {start.hex(' ') or 'nothing'}, not 1f 8b")
            raw.seek(0)
            with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                while chunk := stream.read(_CHUNK):
                    digest.update(chunk)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(
            f"the file downloaded from {url} is not valid gzip ({exc}); "
            f"try again later, use another mirror or provide the file yourself"
        ) from exc
    return digest.hexdigest()


def _fetch(url: str, dest: Path, timeout_s: float) -> None:
    """Stream `url` into `dest`; network errors propagate, disk errors become DataError."""
    request = urllib.request.Request(url, headers={"User-Agent": f"jiasu/{__version__}"})
    with (
        urllib.request.urlopen(request, timeout=timeout_s) as response,
        _open_for_write(dest) as out,
    ):
        while chunk := response.read(_CHUNK):
            try:
                out.write(chunk)
            except OSError as exc:
                raise _disk_error(dest, exc) from exc


def _disk_error(dest: Path, exc: OSError) -> DataError:
    return DataError(
        f"cannot write {dest} ({exc.strerror or exc}); free some space or make its folder "
        f"writable, or choose another cache folder with $JIASU_CACHE_DIR"
    )


def _open_for_write(dest: Path) -> BinaryIO:
    try:
        return open(dest, "wb")
    except OSError as exc:
        raise _disk_error(dest, exc) from exc


def download_verified(
    filename: str,
    sha256: str,
    dest_dir: Path,
    mirrors: Sequence[str],
    *,
    timeout_s: float = 10.0,
    progress: Progress | None = None,
) -> Path:
    """Download `filename` (a .gz file) into `dest_dir` from the first mirror that answers.

    Mirrors are tried in order; a network error moves on to the next one. A file that
    arrives but is not valid gzip or whose uncompressed SHA-256 is not `sha256` raises
    `DataError` naming the URL at once (a wrong file is never retried elsewhere, so
    tampering is loud). When every mirror fails, `AllMirrorsFailed` is raised.
    """
    final = dest_dir / filename
    failures: list[tuple[str, str]] = []
    for mirror in mirrors:
        url = mirror_url(mirror, filename)
        if progress is not None:
            progress(f"downloading {filename} from {url}")
        try:
            with atomic_path(final) as tmp:
                _fetch(url, tmp, timeout_s)
                actual = _gunzip_sha256(tmp, url)
                if actual != sha256:
                    raise DataError(
                        f"the file downloaded from {url} fails its checksum (expected SHA-256 "
                        f"{sha256}, found {actual}); the mirror serves a different file, so "
                        f"use another mirror or provide the file yourself"
                    )
        except _NETWORK_ERRORS as exc:
            failures.append((url, _reason(exc)))
            continue
        return final
    raise AllMirrorsFailed(filename, failures)
