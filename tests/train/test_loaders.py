from __future__ import annotations

import torch
from torch.utils.data import DataLoader, TensorDataset

from jiasu.train.loaders import DeviceBatches


def test_device_batches_are_the_dataloaders_batches_epoch_after_epoch() -> None:
    images = torch.randn(103, 1, 28, 28)
    labels = torch.randint(0, 10, (103,))
    reference = DataLoader(
        TensorDataset(images, labels),
        batch_size=16,
        shuffle=True,
        generator=torch.Generator().manual_seed(7),
    )
    ours = DeviceBatches(images, labels, 16, generator=torch.Generator().manual_seed(7))
    assert len(ours) == len(reference) == 7
    for _epoch in range(3):
        pairs = list(zip(reference, ours, strict=True))
        for (x_ref, y_ref), ((x,), y) in pairs:
            assert torch.equal(x_ref, x) and torch.equal(y_ref, y)


def test_unshuffled_and_drop_last() -> None:
    images, labels = torch.zeros(10, 1, 2, 2), torch.arange(10)
    batches = list(DeviceBatches(images, labels, 4, shuffle=False, drop_last=True))
    assert [b[1].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_several_inputs_are_sliced_alike() -> None:
    floats, ids = torch.arange(10.0)[:, None], torch.arange(10) * 100
    targets = torch.arange(10)
    for (x, i), y in DeviceBatches((floats, ids), targets, 3, generator=torch.Generator()):
        assert torch.equal(x[:, 0].long(), y) and torch.equal(i, y * 100)
