from __future__ import annotations

import pytest
import torch

from jiasu.data import ImageDataset
from jiasu.models import ModelSpec, create_model
from jiasu.train.auto import auto_recipe, schedule_for
from jiasu.train.data import as_arrays
from jiasu.train.techniques import (
    ChannelsLast,
    DeviceData,
    DevicePlacement,
    FusedOptimizer,
    Threads,
)


def test_schedule_scales_the_batch_to_the_dataset() -> None:
    techniques, why = schedule_for(create_model("cnn"), 60_000)
    assert techniques[0].describe() == "large_batch(batch_size=128, lr_scaling='sqrt')"
    assert [t.name for t in techniques] == ["large_batch", "one_cycle", "label_smoothing"] and why
    dense, _ = schedule_for(create_model("mlp"), 60_000)
    assert dense[0].describe() == "large_batch(batch_size=256, lr_scaling='sqrt')"
    small, _ = schedule_for(create_model("mlp"), 12_800)  # keeps ~100 steps per epoch
    assert small[0].describe() == "large_batch(batch_size=128, lr_scaling='sqrt')"
    tiny, _ = schedule_for(create_model("mlp"), 500)
    assert [t.name for t in tiny] == ["one_cycle"]  # too little data for a larger batch


def test_auto_probes_each_candidate_and_explains_every_decision(small_train: ImageDataset) -> None:
    data = as_arrays(small_train.take(3000), "train")
    result = auto_recipe(
        ModelSpec("mlp"),
        data,
        epochs=1,
        probe_steps=4,
        repeats=3,
        probes=(DevicePlacement, Threads, DeviceData, FusedOptimizer, ChannelsLast),
    )
    assert [p.name for p in result.probes] == [
        "device_placement", "threads", "device_data", "fused_optimizer", "channels_last",
    ]  # fmt: skip
    by_name = {p.name: p for p in result.probes}
    assert not by_name["device_placement"].kept  # no accelerator on the test machine
    assert "channels_last" not in result.recipe.names()
    assert "no convolution" in by_name["channels_last"].reason
    for probe in result.probes:
        assert probe.reason  # kept or dropped, always with a reason
    # exact techniques reproduce the current recipe's losses
    assert by_name["device_data"].loss_difference == pytest.approx(0.0, abs=1e-6)
    assert by_name["threads"].loss_difference == pytest.approx(0.0, abs=1e-6)
    # the schedule comes last and is reported as such
    assert result.recipe.names()[-1] == "one_cycle"
    assert result.schedule and all("(" in note for note in result.schedule)
    assert {d["name"] for d in result.dropped()} == {p.name for p in result.probes if not p.kept}
    torch.manual_seed(0)
