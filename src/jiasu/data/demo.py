"""Data for demos: MNIST when it can be had, else the offline digits fallback."""

from __future__ import annotations

import dataclasses
import os

from jiasu.data.dataset import DatasetSplits
from jiasu.data.digits import load_digits_28
from jiasu.data.download import Progress
from jiasu.data.mnist import MnistUnavailableError, load_mnist


def load_for_demo(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    allow_fallback: bool = True,
    progress: Progress | None = None,
) -> DatasetSplits:
    """Load MNIST with `load_mnist`; when it is unavailable, fall back to the 8×8 digits.

    Only `MnistUnavailableError` (nothing on disk, no download possible) triggers the
    fallback, and only with `allow_fallback`; a corrupt file or a checksum mismatch is
    always raised. On fallback the returned splits have ``is_fallback=True`` and
    ``notice`` holds the unavailability message, for the caller to print.
    """
    try:
        return load_mnist(data_dir, progress=progress)
    except MnistUnavailableError as exc:
        if not allow_fallback:
            raise
        return dataclasses.replace(load_digits_28(), notice=str(exc))
