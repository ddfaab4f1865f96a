"""The offline digits fallback."""

from __future__ import annotations

import pytest
import torch

from jiasu.core.errors import ConfigError
from jiasu.data import load_digits_28


def test_digits_shapes_range_and_labels() -> None:
    splits = load_digits_28()
    assert splits.is_fallback and "8×8 digits" in splits.source
    assert len(splits.train) + len(splits.test) == 1797
    assert len(splits.train) > 0 and len(splits.test) == round(1797 * 0.2)
    for part in (splits.train, splits.test):
        assert part.images.shape[1:] == (1, 28, 28) and part.images.dtype == torch.float32
        assert float(part.images.min()) >= 0.0 and float(part.images.max()) <= 1.0
        assert part.labels.dtype == torch.int64
        assert set(part.labels.tolist()) == set(range(10))
    # MNIST-style: a 4-pixel empty border around the 20×20 digit box
    images = splits.train.images
    assert float(images[..., :4, :].abs().max()) == 0.0
    assert float(images[..., :, 24:].abs().max()) == 0.0
    assert float(images.max()) > 0.9


def test_digits_are_deterministic_and_seeded() -> None:
    a, b, c = load_digits_28(seed=3), load_digits_28(seed=3), load_digits_28(seed=4)
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.test.labels, b.test.labels)
    assert not torch.equal(a.test.labels, c.test.labels)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -1.0, float("nan")])
def test_digits_rejects_bad_fraction(fraction: float) -> None:
    with pytest.raises(ConfigError, match="test fraction"):
        load_digits_28(test_fraction=fraction)
