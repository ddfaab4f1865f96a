"""Loss and metrics of a model on a dataset, in large no-grad batches.

`measure` runs the model over the samples, keeps every output on the device and then
computes the loss and each metric on all of them at once (one synchronisation at the
end), so metrics that do not average over batches come out right. `evaluate` is the
classifier's pair (cross-entropy, accuracy) on images and labels.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.utils.data import DataLoader

from jiasu.train.data import Samples
from jiasu.train.loaders import Batch, StreamedBatches, dataset_batches
from jiasu.train.metrics import compute
from jiasu.train.objective import Objective

MAX_EVAL_BATCH = 1024  # samples per evaluation batch, at most
EVAL_ELEMENTS = 1 << 24  # input elements per evaluation batch, at most (16M)


def measure(
    model: nn.Module,
    data: Samples,
    objective: Objective,
    *,
    batch_size: int | None = None,
    device: torch.device | None = None,
    names: tuple[str, ...] | None = None,
    num_workers: int = 0,
) -> dict[str, float]:
    """``{"loss": ..., metric: ...}`` of `model` (called ``model(*inputs)``) on `data`,
    in eval mode; the model's train/eval mode is restored afterwards.

    `batch_size` None picks up to `MAX_EVAL_BATCH` samples per batch (fewer for large
    samples); a DataLoader is run as it batches. `names` orders dict inputs. A Dataset
    is decoded by `num_workers` worker processes, which end with the pass.
    """
    outputs, targets = predict_all(model, data, batch_size=batch_size, device=device,
                                   names=names, num_workers=num_workers)  # fmt: skip
    return figures_of(objective, outputs, targets)


@torch.inference_mode()
def predict_all(
    model: nn.Module,
    data: Samples,
    *,
    batch_size: int | None = None,
    device: torch.device | None = None,
    names: tuple[str, ...] | None = None,
    num_workers: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every output (float, on the device) and target of `model` on `data`, as `measure`
    runs it; a data-parallel run gathers these from its ranks before `figures_of`."""
    from jiasu.data.examples import Examples

    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    outputs: list[torch.Tensor] = []
    targets: list[torch.Tensor] = []
    try:
        for inputs, y in _batches(data, batch_size, device, names, num_workers):
            outputs.append(model(*inputs).float())
            targets.append(y)
    finally:
        model.train(was_training)
    if not outputs:
        raise ValueError("cannot evaluate on an empty dataset")
    all_outputs = torch.cat(outputs)
    all_targets = targets[0] if isinstance(data, Examples) and len(targets) == 1 else None
    if all_targets is None:
        all_targets = torch.cat(targets)
    return all_outputs, all_targets


def figures_of(
    objective: Objective, outputs: torch.Tensor, targets: torch.Tensor
) -> dict[str, float]:
    """The objective's loss and every metric on a whole dataset's outputs and targets."""
    figures = {"loss": float(objective.eval_loss()(outputs, targets))}
    figures.update(compute(objective.metrics(), outputs, targets))
    return figures


def evaluate(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    batch_size: int = MAX_EVAL_BATCH,
    device: torch.device | None = None,
) -> tuple[float, float]:
    """Return (mean cross-entropy loss, top-1 accuracy in [0, 1]) of a classifier of
    `images`, with the model in eval mode (restored afterwards)."""
    from jiasu.data.examples import Examples

    if images.shape[0] == 0:
        raise ValueError("cannot evaluate on an empty dataset")
    data = Examples.from_arrays(images, labels)
    figures = measure(model, data, Objective(), batch_size=batch_size, device=device)
    return figures["loss"], figures["accuracy"]


def eval_batch_size(data: Samples, training_batch: int) -> int:
    """Samples per evaluation batch: up to `MAX_EVAL_BATCH`, fewer for large samples, and
    never fewer than the training batch."""
    from jiasu.data.examples import Examples

    if not isinstance(data, Examples) or not len(data):
        return max(training_batch, 1)
    per_sample = sum(x[0].numel() for x in data.inputs)
    return max(training_batch, min(MAX_EVAL_BATCH, EVAL_ELEMENTS // max(per_sample, 1)))


def _batches(
    data: Samples,
    batch_size: int | None,
    device: torch.device,
    names: tuple[str, ...] | None,
    num_workers: int = 0,
) -> Iterable[Batch]:
    from jiasu.data.examples import Examples

    if isinstance(data, Examples):
        size = batch_size or eval_batch_size(data, 1)
        for start in range(0, len(data), size):
            inputs = tuple(
                x[start : start + size].to(device, non_blocking=True) for x in data.inputs
            )
            yield inputs, data.targets[start : start + size].to(device, non_blocking=True)
    elif isinstance(data, DataLoader):
        yield from StreamedBatches(data, device, names=names)
    else:
        batches = dataset_batches(data, batch_size or 64, shuffle=False, device=device,
                                  names=names, num_workers=num_workers)  # fmt: skip
        try:
            yield from batches
        finally:
            batches.close()
