"""The zoo's models: real architectures with random weights, built from configs (no downloads).

Each builder returns a `ZooModel`: the eval-mode module, how it is called (positional or
keyword inputs), and a function making inputs of a given batch. `quick=True` shrinks every
architecture (hidden sizes, layers) so a smoke run finishes in seconds; the full sizes are
ResNet-50 (3×224×224), ViT-B/16, BERT-base and DistilBERT (sequence 128), a tabular MLP on
30 features and a GRU over 50 steps of 16 features.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

SEQUENCE = 128  # tokens per text input
GRU_STEPS, GRU_FEATURES = 50, 16
TABULAR_FEATURES = 30


@dataclass(frozen=True)
class ZooModel:
    """One zoo entry: `module(**inputs)` or `module(*inputs)`, and its input maker."""

    name: str
    module: nn.Module
    keyword: bool  # True: called as module(input_ids=..., attention_mask=...)
    names: tuple[str, ...]  # the inputs, in order
    make_inputs: Callable[[int, int], tuple[np.ndarray, ...]]  # (batch, seed) -> arrays
    symbolic: tuple[tuple[str, ...], ...]  # per input, the symbol of each axis ('' fixed)


def _seed() -> None:
    torch.manual_seed(0)


def _images(size: int) -> Callable[[int, int], tuple[np.ndarray, ...]]:
    def make(batch: int, seed: int) -> tuple[np.ndarray, ...]:
        rng = np.random.default_rng(seed)
        return (rng.standard_normal((batch, 3, size, size)).astype(np.float32),)

    return make


def _tokens(vocab: int, sequence: int) -> Callable[[int, int], tuple[np.ndarray, ...]]:
    def make(batch: int, seed: int) -> tuple[np.ndarray, ...]:
        rng = np.random.default_rng(seed)
        ids = rng.integers(1000 if vocab > 2000 else 1, vocab, size=(batch, sequence))
        return ids.astype(np.int64), np.ones((batch, sequence), dtype=np.int64)

    return make


def resnet50(quick: bool = False) -> ZooModel:
    from transformers import ResNetConfig, ResNetForImageClassification

    _seed()
    # ResNetConfig() is ResNet-50: bottleneck layers, depths 3-4-6-3, widths 256…2048.
    config = ResNetConfig(num_labels=1000)
    if quick:
        config = ResNetConfig(
            num_labels=10,
            embedding_size=8,
            hidden_sizes=[16, 32],
            depths=[1, 1],
            layer_type="basic",
        )
    size = 32 if quick else 224
    model = ResNetForImageClassification(config).eval()
    return ZooModel(
        "resnet50", model, False, ("pixel_values",), _images(size), (("B", "", "", ""),)
    )


def vit(quick: bool = False) -> ZooModel:
    from transformers import ViTConfig, ViTForImageClassification

    _seed()
    # ViTConfig() is ViT-B/16 at 224: 12 layers, hidden 768, patch 16.
    config = ViTConfig(num_labels=1000)
    if quick:
        config = ViTConfig(
            num_labels=10,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            image_size=32,
            patch_size=8,
        )
    size = config.image_size
    model = ViTForImageClassification(config).eval()
    return ZooModel("vit", model, False, ("pixel_values",), _images(size), (("B", "", "", ""),))


def _text_classifier(name: str, model: nn.Module, vocab: int, quick: bool) -> ZooModel:
    """A sequence classifier called as module(input_ids=..., attention_mask=...)."""
    return ZooModel(
        name,
        model.eval(),
        True,
        ("input_ids", "attention_mask"),
        _tokens(vocab, 16 if quick else SEQUENCE),
        (("B", "S"), ("B", "S")),
    )


def bert(quick: bool = False) -> ZooModel:
    from transformers import BertConfig, BertForSequenceClassification

    _seed()
    config = BertConfig(num_labels=2)  # BERT-base: 12 layers, hidden 768
    if quick:
        config = BertConfig(
            num_labels=2,
            vocab_size=500,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
        )
    model = BertForSequenceClassification(config)
    return _text_classifier("bert", model, config.vocab_size, quick)


def distilbert(quick: bool = False) -> ZooModel:
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    _seed()
    config = DistilBertConfig(num_labels=2)  # 6 layers, hidden 768
    if quick:
        config = DistilBertConfig(
            num_labels=2, vocab_size=500, dim=32, n_layers=2, n_heads=2, hidden_dim=64
        )
    model = DistilBertForSequenceClassification(config)
    return _text_classifier("distilbert", model, config.vocab_size, quick)


class TabularMLP(nn.Module):
    """30 features → 256 → 256 → 2 classes, with batch norm (a typical tabular classifier)."""

    def __init__(self, features: int = TABULAR_FEATURES, hidden: int = 256) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(features, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
            nn.Linear(hidden, 2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def mlp(quick: bool = False) -> ZooModel:
    _seed()
    model = TabularMLP(hidden=32 if quick else 256).eval()

    def make(batch: int, seed: int) -> tuple[np.ndarray, ...]:
        rng = np.random.default_rng(seed)
        return (rng.standard_normal((batch, TABULAR_FEATURES)).astype(np.float32),)

    return ZooModel("mlp", model, False, ("features",), make, (("B", ""),))


class GRUClassifier(nn.Module):
    """A sequence of float feature vectors → 2-layer GRU → the last state → 5 classes."""

    def __init__(self, features: int = GRU_FEATURES, hidden: int = 128) -> None:
        super().__init__()
        self.gru = nn.GRU(features, hidden, num_layers=2, batch_first=True)
        self.head = nn.Linear(hidden, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(x)  # (N, T, hidden)
        return self.head(out[:, -1])


def gru(quick: bool = False) -> ZooModel:
    _seed()
    model = GRUClassifier(hidden=16 if quick else 128).eval()
    steps = 10 if quick else GRU_STEPS

    def make(batch: int, seed: int) -> tuple[np.ndarray, ...]:
        rng = np.random.default_rng(seed)
        return (rng.standard_normal((batch, steps, GRU_FEATURES)).astype(np.float32),)

    return ZooModel("gru", model, False, ("sequence",), make, (("B", "T", ""),))


BUILDERS: dict[str, Callable[[bool], ZooModel]] = {
    "resnet50": resnet50,
    "vit": vit,
    "bert": bert,
    "distilbert": distilbert,
    "mlp": mlp,
    "gru": gru,
}
