"""Image files: finding them in a folder, opening them safely, decoding them to pixels.

Shared by the readers of inputs for `predict` (jiasu.data.inputs) and of training data
(jiasu.data.training_images). Pixels are float32 (C, H, W) in [0, 1]: one channel for
grey images, three (RGB) for anything else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from jiasu.core.errors import DataError
from jiasu.core.extras import require

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
GREY_MODES = ("1", "L", "I", "I;16", "F")  # Pillow modes of one channel


def pillow(purpose: str) -> Any:
    """The `PIL.Image` module, or `MissingExtraError` naming the `images` extra."""
    return require("PIL.Image", extra="images", purpose=purpose)


def images_in(folder: Path) -> list[Path]:
    """The image files directly in `folder`, sorted by name; hidden files are skipped."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
    )


def subfolders(folder: Path) -> list[Path]:
    """The folders directly in `folder`, sorted by name; hidden ones are skipped."""
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def open_image(path: Path, image: Any, *, decode: bool = True) -> Any:
    """`path` opened with Pillow's `image` module; decoded now unless `decode` is False
    (then only the header is read: size and mode). A damaged file is a `DataError`."""
    try:
        picture = image.open(path)
        if decode:
            picture.load()  # decode now, so a damaged file fails here
    except image.DecompressionBombError as exc:
        raise DataError(f"{path} is too large an image ({exc}); resize it first") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} is not a readable image ({exc}); replace or remove it") from None
    return picture


def channels_of(picture: Any) -> int:
    """1 for a grey image, 3 for any other (colour, palette, with alpha)."""
    return 1 if picture.mode in GREY_MODES else 3


def pixels(picture: Any, image: Any, channels: int, size: tuple[int, int]) -> np.ndarray:
    """A decoded picture as float32 (C, H, W) in [0, 1] with `channels` (1 or 3) and
    `size` (height, width), resized bilinearly when it differs."""
    height, width = size
    converted = picture.convert("L" if channels == 1 else "RGB")
    if converted.size != (width, height):
        converted = converted.resize((width, height), image.Resampling.BILINEAR)
    values = np.asarray(converted, dtype=np.float32) / np.float32(255.0)
    return values[None] if channels == 1 else values.transpose(2, 0, 1)
