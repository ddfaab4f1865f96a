"""An offline stand-in for MNIST: scikit-learn's bundled 8×8 digits, upsampled to 28×28."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from jiasu.core.errors import ConfigError
from jiasu.core.extras import require
from jiasu.data.dataset import DatasetSplits, ImageDataset

DIGITS_SOURCE = (
    "scikit-learn's bundled 8×8 digits upsampled to 28×28 (fallback: MNIST not available)"
)
_MAX_VALUE = 16.0  # the 8×8 digits are counts 0..16 of set pixels in 4×4 blocks
_BOX = 20  # MNIST centres each digit in a 20×20 box inside the 28×28 image
_SIZE = 28


def digits_to_28(images_8x8: torch.Tensor) -> torch.Tensor:
    """Turn (N, 8, 8) values in 0..16 into float32 (N, 1, 28, 28) in [0, 1], MNIST-style.

    Bilinear upsampling to 20×20, then 4 pixels of zero padding on every side.
    """
    x = images_8x8.to(torch.float32).unsqueeze(1) / _MAX_VALUE
    x = F.interpolate(x, size=(_BOX, _BOX), mode="bilinear", align_corners=False)
    pad = (_SIZE - _BOX) // 2
    return F.pad(x, (pad, pad, pad, pad)).clamp_(0.0, 1.0).contiguous()


def load_digits_28(test_fraction: float = 0.2, seed: int = 0) -> DatasetSplits:
    """Load scikit-learn's 1,797 handwritten digits as a 28×28 MNIST look-alike.

    The samples are shuffled with a generator seeded by `seed`, and the last
    `test_fraction` of them (rounded, at least one) becomes the test set, so the same
    arguments always give the same split. Needs the ``digits`` extra (scikit-learn),
    whose data ships inside the package: no network is used.
    """
    if (
        isinstance(test_fraction, bool)
        or not isinstance(test_fraction, (int, float))
        or not math.isfinite(test_fraction)
        or not 0 < test_fraction < 1
    ):
        raise ConfigError(
            f"test fraction {test_fraction!r} is invalid; use a number strictly between 0 and 1, "
            f"such as 0.2"
        )
    datasets = require("sklearn.datasets", extra="digits", purpose="the offline digits fallback")
    bunch = datasets.load_digits()
    images = digits_to_28(torch.as_tensor(bunch.images))
    labels = torch.as_tensor(bunch.target, dtype=torch.int64)
    n = int(labels.shape[0])
    n_test = min(max(round(n * test_fraction), 1), n - 1)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    train_idx, test_idx = order[: n - n_test], order[n - n_test :]
    return DatasetSplits(
        train=ImageDataset(images[train_idx], labels[train_idx], "digits 28×28 train"),
        test=ImageDataset(images[test_idx], labels[test_idx], "digits 28×28 test"),
        source=DIGITS_SOURCE,
        is_fallback=True,
    )
