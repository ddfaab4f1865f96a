"""Small models of other signatures than MNIST's, optimized with `jiasu.optimize` and saved
as artifacts, for the `jiasu predict` and engine tests: a tabular MLP (30 features -> 2
classes) and a text classifier of two int64 inputs (token ids and a mask) that returns a
dict with "logits", as a Hugging Face model does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

FEATURES = 30
VOCABULARY = 100
SEQUENCE = 12
TEXT_CLASSES = 3


class TextClassifier(nn.Module):
    """Mean of the unmasked token embeddings -> logits; a dict out, like a ModelOutput."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCABULARY, 8)
        self.head = nn.Linear(8, TEXT_CLASSES)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        weights = attention_mask.unsqueeze(-1).float()  # (B, S, 1)
        hidden = self.embed(input_ids) * weights  # (B, S, 8)
        pooled = hidden.sum(1) / weights.sum(1).clamp(min=1.0)
        return {"hidden": hidden, "logits": self.head(pooled)}


def tabular_mlp(outputs: int = 2) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(FEATURES, 16), nn.ReLU(), nn.Linear(16, outputs)).eval()


def text_classifier() -> TextClassifier:
    torch.manual_seed(0)
    return TextClassifier().eval()


def text_examples(batch: int = 4) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(0, VOCABULARY, (batch, SEQUENCE), generator=generator)
    return {"input_ids": ids, "attention_mask": torch.ones(batch, SEQUENCE, dtype=torch.int64)}


def save_optimized(
    model: nn.Module,
    examples: object,
    folder: Path,
    backends: tuple[str, ...] = ("torch", "onnxruntime"),
) -> Path:
    """`jiasu.optimize` at test speed (in this process, a fraction of a second of timing),
    the pick saved as an artifact in `folder`."""
    import jiasu

    result = jiasu.optimize(model, examples, backends=backends, isolate=False, measure_s=0.2)
    return result.save(folder)


_BUILT: dict[str, Path] = {}  # one artifact of each kind per test session


def tabular_artifact(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, nn.Module]:
    """The tabular MLP's artifact, built once per session (the CLI and engine tests share it)."""
    if "tabular" not in _BUILT:
        folder = tmp_path_factory.mktemp("tabular") / "artifact"
        _BUILT["tabular"] = save_optimized(tabular_mlp(), torch.randn(4, FEATURES), folder)
    return _BUILT["tabular"], tabular_mlp()


def text_artifact(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, nn.Module]:
    """The two-input text classifier's artifact, built once per session."""
    if "text" not in _BUILT:
        folder = tmp_path_factory.mktemp("text") / "artifact"
        _BUILT["text"] = save_optimized(text_classifier(), text_examples(), folder)
    return _BUILT["text"], text_classifier()


def text_inputs(n: int = 25, seed: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Token ids (n, SEQUENCE) int64 and a mask of ones then zeros (each row at least one)."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, VOCABULARY, (n, SEQUENCE), dtype=np.int64)
    mask = (np.arange(SEQUENCE) < rng.integers(1, SEQUENCE + 1, (n, 1))).astype(np.int64)
    return ids, mask


def text_logits(model: nn.Module, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The eager model's logits: the reference every runtime and engine must match."""
    with torch.inference_mode():
        return model(torch.from_numpy(ids), torch.from_numpy(mask))["logits"].numpy()
