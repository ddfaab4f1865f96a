"""Model factories for benchmarks/train_zoo.py, named to `jiasu train` as
``--model train_zoo_models:resnet`` with benchmarks/ on PYTHONPATH.

Each factory takes no arguments (as `jiasu train --model package.module:factory` calls it)
and returns a randomly initialised torch module sized for the data train_zoo.py makes:

* `resnet`: a ResNet-style CNN (three stages of basic residual blocks, batch norm) for
  (N, 3, 32, 32) images in [0, 1] and `IMAGE_CLASSES` classes;
* `bert`: `transformers.BertForSequenceClassification` from BERT-mini's `BertConfig` (random
  init, no download) for `input_ids` / `attention_mask` (N, `SEQUENCE`) int64;
* `mlp`: an MLP regressor for `TABLE_FEATURES` numeric columns, one output.
"""

from __future__ import annotations

from torch import nn

IMAGE_SIZE, IMAGE_CLASSES = 32, 10
VOCAB, SEQUENCE, TEXT_CLASSES = 512, 128, 4
TABLE_FEATURES = 16


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with batch norm and an identity (or 1×1 strided) shortcut."""

    def __init__(self, channels_in: int, channels_out: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels_in, channels_out, 3, stride, 1, bias=False),
            nn.BatchNorm2d(channels_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels_out, channels_out, 3, 1, 1, bias=False),
            nn.BatchNorm2d(channels_out),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or channels_in != channels_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(channels_in, channels_out, 1, stride, bias=False),
                nn.BatchNorm2d(channels_out),
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):  # type: ignore[no-untyped-def]
        return self.relu(self.body(x) + self.shortcut(x))


def resnet() -> nn.Module:
    """ResNet-style CNN: a strided stem (16 channels, 32×32 → 16×16, as ResNet's stem
    downsamples), then stages of 16 (16×16), 32 (8×8) and 64 (4×4) channels."""
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, 2, 1, bias=False),
        nn.BatchNorm2d(16),
        nn.ReLU(inplace=True),
        BasicBlock(16, 16, 1),
        BasicBlock(16, 32, 2),
        BasicBlock(32, 64, 2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, IMAGE_CLASSES),
    )


def bert() -> nn.Module:
    """BERT-mini's shape (4 layers, hidden 256, 4 heads, feed-forward 1024; Turc et al.
    2019) as a classifier with random weights. A two-layer hidden-64 BERT was measured
    first: its steps are so small that per-step overheads dominate and bf16 does not pay
    (auto 1.12× the baseline on an AMX Xeon)."""
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(
        vocab_size=VOCAB,
        hidden_size=256,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=1024,
        max_position_embeddings=SEQUENCE,
        num_labels=TEXT_CLASSES,
    )
    return BertForSequenceClassification(config)


def mlp() -> nn.Module:
    """Regressor: `TABLE_FEATURES` → 128 → 128 → 1, ReLU."""
    return nn.Sequential(
        nn.Linear(TABLE_FEATURES, 128),
        nn.ReLU(),
        nn.Linear(128, 128),
        nn.ReLU(),
        nn.Linear(128, 1),
    )
