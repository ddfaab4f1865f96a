"""Load MNIST from a folder, the cache, or a verified download.

Where the files come from, first match wins:

1. the `data_dir` argument (the CLI's ``--data-dir DIR``);
2. the environment variable ``JIASU_DATA_DIR``;
3. the cache folder: the `cache_dir` argument, else ``$JIASU_CACHE_DIR/mnist``, else
   ``~/.cache/jiasu/mnist``;
4. a download into that cache folder (unless ``download=False``).

A folder named explicitly (1 or 2) must hold all four files: a missing one is an error,
never a silent download. Files in such a folder get every structural check (IDX header,
size, 28×28 images, labels 0–9, matching counts) but no checksum, so MNIST-format data
such as Fashion-MNIST can be used in its place. Files in the cache, including fresh
downloads, must match the SHA-256 of the original MNIST files.
Each file may be stored raw (``NAME``) or gzip-compressed (``NAME.gz``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from jiasu.core.errors import DataError
from jiasu.core.task import Task
from jiasu.data.dataset import DatasetSplits, ImageDataset
from jiasu.data.download import AllMirrorsFailed, Progress, download_verified
from jiasu.data.idx import read_idx

__all__ = [
    "DEFAULT_MIRRORS",
    "FILES",
    "INPUT_SHAPE",
    "MNIST_TASK",
    "NUM_CLASSES",
    "DatasetSplits",
    "ImageDataset",
    "MnistUnavailableError",
    "default_cache_dir",
    "download_mnist",
    "load_mnist",
    "mirrors_from_env",
]

#: SHA-256 of the UNCOMPRESSED content of the four original MNIST files.
FILES: Mapping[str, str] = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
_SPLITS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
DEFAULT_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
ENV_DATA_DIR = "JIASU_DATA_DIR"
ENV_CACHE_DIR = "JIASU_CACHE_DIR"
ENV_MIRRORS = "JIASU_MNIST_MIRRORS"
IMAGE_SIZE = 28
NUM_CLASSES = 10
INPUT_SHAPE = (1, IMAGE_SIZE, IMAGE_SIZE)  # one sample: channel, height, width
#: How models of MNIST are verified: top-1 accuracy over the ten digit classes.
MNIST_TASK = Task("classification", "accuracy", classes=NUM_CLASSES)


class MnistUnavailableError(DataError):
    """MNIST is not on disk and cannot be downloaded; the message says how to provide it."""


def default_cache_dir() -> Path:
    """Return ``$JIASU_CACHE_DIR/mnist``, or ``~/.cache/jiasu/mnist`` when it is unset."""
    parent = os.environ.get(ENV_CACHE_DIR)
    base = Path(parent).expanduser() if parent else Path.home() / ".cache" / "jiasu"
    return base / "mnist"


def mirrors_from_env() -> tuple[str, ...]:
    """Return the mirrors in ``$JIASU_MNIST_MIRRORS`` (comma-separated), else the defaults."""
    value = os.environ.get(ENV_MIRRORS, "")
    mirrors = tuple(m.strip() for m in value.split(",") if m.strip())
    return mirrors or DEFAULT_MIRRORS


def _how_to_provide(cache_dir: Path) -> str:
    return (
        f"provide the four MNIST files ({', '.join(FILES)}, raw or .gz) with --data-dir DIR, "
        f"with ${ENV_DATA_DIR}, or by putting them in {cache_dir}"
    )


def _find(folder: Path, name: str) -> Path | None:
    """Return ``folder/NAME.gz`` or ``folder/NAME``, whichever exists first, else None."""
    for candidate in (folder / f"{name}.gz", folder / name):
        if candidate.is_file():
            return candidate
    return None


def _require(folder: Path, name: str) -> Path:
    path = _find(folder, name)
    if path is None:
        raise DataError(f"{folder} lacks {name}; put it there, raw or as {name}.gz")
    return path


def _missing(folder: Path) -> list[str]:
    return [name for name in FILES if _find(folder, name) is None]


def download_mnist(
    cache_dir: str | os.PathLike[str] | None = None,
    mirrors: Sequence[str] | None = None,
    timeout_s: float = 10.0,
    *,
    progress: Progress | None = None,
) -> Path:
    """Download the MNIST files missing from `cache_dir` and return the folder.

    `cache_dir` defaults to `default_cache_dir()`; `mirrors` to `mirrors_from_env()`.
    Each file is fetched as ``NAME.gz``, trying the mirrors in order, and kept only when
    the SHA-256 of its uncompressed content matches `FILES`. A mismatch raises
    `DataError` naming the URL; when every mirror fails, `MnistUnavailableError`.
    """
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    urls = tuple(mirrors) if mirrors is not None else mirrors_from_env()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MnistUnavailableError(
            f"MNIST is not available: the cache folder {folder} cannot be created "
            f"({exc.strerror or exc}); set ${ENV_CACHE_DIR} to a writable folder or "
            + _how_to_provide(folder)
        ) from exc
    for name in _missing(folder):
        try:
            download_verified(
                f"{name}.gz", FILES[name], folder, urls, timeout_s=timeout_s, progress=progress
            )
        except AllMirrorsFailed as exc:
            tried = ", ".join(f"{url}: {reason}" for url, reason in exc.failures) or "no mirrors"
            raise MnistUnavailableError(
                f"MNIST is not available: downloading {exc.filename} failed ({tried}); "
                + _how_to_provide(folder)
            ) from None
    return folder


def _to_dataset(images: np.ndarray, labels: np.ndarray, name: str) -> ImageDataset:
    pixels = torch.from_numpy(images).unsqueeze(1).to(torch.float32).div_(255.0)
    return ImageDataset(pixels, torch.from_numpy(labels.astype(np.int64)), name)


def _load_split(folder: Path, split: str, *, verify: bool) -> ImageDataset:
    images_name, labels_name = _SPLITS[split]
    images_path, labels_path = _require(folder, images_name), _require(folder, labels_name)
    images = read_idx(images_path, sha256=FILES[images_name] if verify else None)
    labels = read_idx(labels_path, sha256=FILES[labels_name] if verify else None)
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise DataError(
            f"{images_path} holds an array of shape {images.shape}, not (N, 28, 28) images; "
            f"pass MNIST-format image files"
        )
    if labels.ndim != 1:
        raise DataError(
            f"{labels_path} holds an array of shape {labels.shape}, not (N,) labels; "
            f"pass MNIST-format label files"
        )
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            f"{images_path} holds {images.shape[0]} images but {labels_path} holds "
            f"{labels.shape[0]} labels; pass an images file and the labels file that belongs "
            f"to it"
        )
    bad = np.flatnonzero(labels >= NUM_CLASSES)
    if bad.size:
        raise DataError(
            f"{labels_path} has label {int(labels[bad[0]])} at index {int(bad[0])} "
            f"({bad.size} labels outside 0..9 in all); pass a label file for the ten digit "
            f"classes"
        )
    return _to_dataset(images, labels, f"MNIST {split}")


def _load_folder(folder: Path, *, verify: bool, source: str) -> DatasetSplits:
    return DatasetSplits(
        train=_load_split(folder, "train", verify=verify),
        test=_load_split(folder, "test", verify=verify),
        source=source,
        is_fallback=False,
    )


def _explicit_folder(folder: Path, given_as: str) -> DatasetSplits:
    if not folder.is_dir():
        raise DataError(
            f"the MNIST folder {folder} (from {given_as}) does not exist; "
            f"point it at a folder holding the four MNIST files"
        )
    missing = _missing(folder)
    if missing:
        raise DataError(
            f"the MNIST folder {folder} (from {given_as}) lacks {', '.join(missing)}; "
            f"put those files there, raw or as .gz, or point {given_as} at another folder"
        )
    return _load_folder(folder, verify=False, source=f"MNIST (IDX files in {folder})")


def load_mnist(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    mirrors: Sequence[str] | None = None,
    timeout_s: float = 10.0,
    progress: Progress | None = None,
) -> DatasetSplits:
    """Load MNIST as float images in [0, 1] of shape (N, 1, 28, 28) and int64 labels.

    The source is resolved as the module docstring describes: `data_dir`, then
    ``$JIASU_DATA_DIR``, then the cache (`cache_dir`, ``$JIASU_CACHE_DIR/mnist`` or
    ``~/.cache/jiasu/mnist``), then a download from `mirrors` (default:
    ``$JIASU_MNIST_MIRRORS`` or `DEFAULT_MIRRORS`). Explicit folders are checked for
    structure only; cached and downloaded files must also match their SHA-256.

    Raises `MnistUnavailableError` when the files are neither on disk nor downloadable,
    and `DataError` for any missing, corrupt or mismatching file.
    """
    if data_dir is not None:
        return _explicit_folder(Path(data_dir).expanduser(), "--data-dir")
    env_dir = os.environ.get(ENV_DATA_DIR)
    if env_dir:
        return _explicit_folder(Path(env_dir).expanduser(), f"${ENV_DATA_DIR}")
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    missing = _missing(folder)
    if not missing:
        return _load_folder(folder, verify=True, source=f"MNIST (IDX files in cache {folder})")
    if not download:
        raise MnistUnavailableError(
            f"MNIST is not available: the cache {folder} lacks {', '.join(missing)} and "
            f"downloading is disabled; " + _how_to_provide(folder)
        )
    download_mnist(folder, mirrors, timeout_s, progress=progress)
    return _load_folder(folder, verify=True, source=f"MNIST (downloaded to cache {folder})")
