"""Loss and accuracy of a classifier on a dataset, in large no-grad batches."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    batch_size: int = 1024,
    device: torch.device | None = None,
) -> tuple[float, float]:
    """Return (mean cross-entropy loss, top-1 accuracy in [0, 1]) with the model in eval mode.

    The model's train/eval mode is restored afterwards.
    """
    if images.shape[0] == 0:
        raise ValueError("cannot evaluate on an empty dataset")
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    try:
        for start in range(0, images.shape[0], batch_size):
            x = images[start : start + batch_size].to(device, non_blocking=True)
            y = labels[start : start + batch_size].to(device, non_blocking=True)
            logits = model(x).float()  # (B, classes)
            loss_sum += F.cross_entropy(logits, y, reduction="sum")
            correct += (logits.argmax(dim=1) == y).sum()
    finally:
        model.train(was_training)
    n = images.shape[0]
    return loss_sum.item() / n, correct.item() / n
