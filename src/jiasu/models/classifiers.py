"""The founding example's classifier and a small CNN, both for 28×28 single-channel images.

Both return logits (no softmax): the loss is cross-entropy on logits, which is what the
founding document's ``from_logits=True`` meant. Inputs are (B, 1, 28, 28) floats in [0, 1].
"""

from __future__ import annotations

import torch
from torch import nn

from jiasu.core.errors import ConfigError

# Ranges of the size arguments. These are MNIST-sized models: the largest allowed (e.g.
# mlp hidden=16384 with 1000 classes: 29 M parameters, 117 MB) stays far below the
# memory of any machine, so a model file's arguments cannot ask for gigabytes.
MAX_HIDDEN = 16384
IMAGE_SHAPE = (1, 28, 28)  # what every model here takes per sample (MNIST-sized images)
MAX_WIDTH = 256
MAX_CLASSES = 1000


def _int_in(name: str, value: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= high:
        raise ConfigError(f"{name} must be a positive integer of at most {high}, got {value!r}")


def mlp(hidden: int = 128, num_classes: int = 10, dropout: float = 0.2) -> nn.Sequential:
    """The founding document's dense classifier, corrected.

    The document applied ``Dense(8)`` to a (28, 28) input with no Flatten and fed a
    softmax into a ``from_logits=True`` loss; this is the intended model:
    Flatten → Linear(784, H) → ReLU → Dropout(0.2) → Linear(H, 10), returning logits.
    """
    _int_in("hidden", hidden, MAX_HIDDEN)
    _int_in("num_classes", num_classes, MAX_CLASSES)
    if not isinstance(dropout, int | float) or isinstance(dropout, bool) or not 0 <= dropout < 1:
        raise ConfigError(f"dropout must be in [0, 1), got {dropout!r}")
    return nn.Sequential(
        nn.Flatten(),  # (B, 1, 28, 28) → (B, 784)
        nn.Linear(28 * 28, hidden),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden, num_classes),
    )


def cnn(num_classes: int = 10, width: int = 16) -> nn.Sequential:
    """A small CNN: two conv–BN–ReLU–pool blocks and a two-layer head.

    With width 16: about 106k parameters and 1.1 M multiply-adds per image forward
    (6.48 MFLOP per training sample, forward and backward, by torch's FLOP counter).
    """
    _int_in("num_classes", num_classes, MAX_CLASSES)
    _int_in("width", width, MAX_WIDTH)
    w1, w2 = width, 2 * width
    return nn.Sequential(
        nn.Conv2d(1, w1, kernel_size=3, padding=1, bias=False),  # (B, w1, 28, 28)
        nn.BatchNorm2d(w1),
        nn.ReLU(),
        nn.MaxPool2d(2),  # (B, w1, 14, 14)
        nn.Conv2d(w1, w2, kernel_size=3, padding=1, bias=False),  # (B, w2, 14, 14)
        nn.BatchNorm2d(w2),
        nn.ReLU(),
        nn.MaxPool2d(2),  # (B, w2, 7, 7)
        nn.Flatten(),
        nn.Linear(w2 * 7 * 7, 64),
        nn.ReLU(),
        nn.Linear(64, num_classes),
    )


class _ResidualBlock(nn.Module):
    """conv–BN–ReLU–conv–BN plus a shortcut (1×1 conv when the shape changes), then ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


def resnet(num_classes: int = 10, width: int = 16) -> nn.Sequential:
    """A small ResNet-style net (the founding document suggests ResNet): three stages.

    (B, 1, 28, 28) → stem (w, 28, 28) → block (w, 28, 28) → block (2w, 14, 14)
    → block (4w, 7, 7) → global average pool → Linear(4w, classes). About 78k
    parameters at width 16.
    """
    _int_in("num_classes", num_classes, MAX_CLASSES)
    _int_in("width", width, MAX_WIDTH)
    w = width
    return nn.Sequential(
        nn.Conv2d(1, w, 3, padding=1, bias=False),
        nn.BatchNorm2d(w),
        nn.ReLU(),
        _ResidualBlock(w, w, 1),
        _ResidualBlock(w, 2 * w, 2),
        _ResidualBlock(2 * w, 4 * w, 2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4 * w, num_classes),
    )


def vgg(num_classes: int = 10, width: int = 16) -> nn.Sequential:
    """A small VGG-style net (the founding document suggests VGG): stacked 3×3 convs.

    Two stages of conv–BN–ReLU ×2 then max-pool: (B, 1, 28, 28) → (2w, 7, 7), then a
    two-layer classifier head with dropout.
    """
    _int_in("num_classes", num_classes, MAX_CLASSES)
    _int_in("width", width, MAX_WIDTH)

    def stage(c_in: int, c_out: int) -> list[nn.Module]:
        return [
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(),
            nn.MaxPool2d(2),
        ]

    w = width
    return nn.Sequential(
        *stage(1, w),  # (B, w, 14, 14)
        *stage(w, 2 * w),  # (B, 2w, 7, 7)
        nn.Flatten(),
        nn.Linear(2 * w * 7 * 7, 128),
        nn.ReLU(),
        nn.Dropout(0.3),
        nn.Linear(128, num_classes),
    )
