from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from jiasu.data import ImageDataset
from jiasu.models import ModelSpec, create_model
from jiasu.train.auto import (
    DEFAULT_KEEP,
    MIN_SPEEDUP,
    DecisionCache,
    PriorDecision,
    auto_recipe,
    decide,
    other_threads,
    schedule_for,
)
from jiasu.train.data import as_arrays
from jiasu.train.history import History
from jiasu.train.session import TrainResult, TrainSettings
from jiasu.train.techniques import (
    ChannelsLast,
    DeviceData,
    DevicePlacement,
    FusedOptimizer,
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


def test_auto_probes_each_candidate_and_explains_every_decision(
    small_train: ImageDataset, tmp_path: Path
) -> None:
    data = as_arrays(small_train.take(3000), "train")
    decisions = DecisionCache(tmp_path / "decisions.json")
    result = auto_recipe(
        ModelSpec("mlp"),
        data,
        epochs=1,
        probe_steps=4,
        repeats=3,
        max_repeats=6,
        extra_rounds_s=1.0,
        probe_budget_s=600.0,  # the budget is tested apart: here every probe runs
        probes=(DevicePlacement, other_threads, DeviceData, FusedOptimizer, ChannelsLast),
        decisions=decisions,
    )
    assert [p.name for p in result.probes] == [
        "device_placement", "threads", "device_data", "fused_optimizer", "channels_last",
    ]  # fmt: skip
    by_name = {p.name: p for p in result.probes}
    assert by_name["device_placement"].outcome == "not applicable"  # no accelerator here
    assert "channels_last" not in result.recipe.names()
    assert "no convolution" in by_name["channels_last"].reason
    assert by_name["channels_last"].outcome == "not applicable"
    for probe in result.probes:
        assert probe.reason  # kept or dropped, always with a reason
    # exact techniques reproduce the current recipe's losses
    assert by_name["device_data"].loss_difference == pytest.approx(0.0, abs=1e-6)
    assert by_name["threads"].loss_difference == pytest.approx(0.0, abs=1e-6)
    # the schedule comes last and is reported as such
    assert result.recipe.names()[-1] == "one_cycle"
    assert result.schedule and all("(" in note for note in result.schedule)
    assert {d["name"] for d in result.dropped()} == {p.name for p in result.probes if not p.kept}
    # the train JSON carries every timed probe's figures: ratio, interval, rounds, decision
    report = TrainResult(ModelSpec("mlp"), result.recipe, History(), 0.9, result,
                         "MNIST", TrainSettings()).to_dict()  # fmt: skip
    timed = [p for p in json.loads(json.dumps(report))["probes"] if p["speedup"] is not None]
    assert {p["name"] for p in timed} >= {"threads", "device_data", "fused_optimizer"}
    for p in timed:
        assert p["speedup_low"] <= p["speedup"] <= p["speedup_high"]
        assert 3 <= p["rounds"] <= 6 and p["basis"] in ("measured", "prior", "default")
        assert p["kept"] == (p["name"] in result.recipe.names()) and p["reason"]
        assert f"{p['rounds']} rounds" in p["reason"]
    # measured decisions are remembered for this model on this machine; on a busy machine
    # no interval may settle (all "default"), and then there is nothing to remember
    measured = {p["name"] for p in timed if p["basis"] == "measured"}
    if measured:
        remembered = json.loads(decisions.path.read_text())["runs"]
        assert measured <= {name for run in remembered.values() for name in run}
    else:
        assert not decisions.path.exists()
    torch.manual_seed(0)


def _rounds(ratio: float, noise: float, n: int, seed: int) -> tuple[list[float], list[float]]:
    """n paired rounds of step seconds: `without` ≈ ratio × `with`, each ±`noise`, with a
    slow drift of the machine that hits both sides of a round alike."""
    rng = random.Random(seed)
    drift = [1 + 0.3 * rng.random() for _ in range(n)]
    without = [ratio * 0.01 * d * (1 + rng.uniform(-noise, noise)) for d in drift]
    with_ = [0.01 * d * (1 + rng.uniform(-noise, noise)) for d in drift]
    return without, with_


def test_decide_keeps_a_clear_gain_and_drops_no_gain_despite_noise() -> None:
    for seed in range(20):
        keep = decide(*_rounds(1.9, 0.15, 7, seed))  # channels_last on the CNN, noisy
        assert keep.kept and keep.basis == "measured" and keep.low >= MIN_SPEEDUP
        assert keep.low <= keep.speedup <= keep.high and keep.rounds == 7
        drop = decide(*_rounds(1.0, 0.01, 15, seed))
        assert not drop.kept and drop.basis == "measured" and drop.high < MIN_SPEEDUP
    assert "clears 1.03×" in keep.reason and "7 rounds" in keep.reason
    assert drop.reason.startswith("no gain: ")


def test_an_undecided_probe_keeps_the_decision_that_held_before() -> None:
    without, with_ = _rounds(1.03, 0.10, 5, seed=0)  # straddles the threshold, 1.02×
    prior = PriorDecision(kept=True, speedup=1.94, at="2026-11-30T10:00:00+00:00")
    held = decide(without, with_, prior=prior)
    assert held.low < MIN_SPEEDUP <= held.high
    assert held.kept and held.basis == "prior" and "1.94× on 2026-11-30" in held.reason
    dropped_before = decide(without, with_, prior=PriorDecision(False, 0.98, prior.at))
    assert not dropped_before.kept and dropped_before.basis == "prior"
    # no earlier decision on this machine: the technique's default
    assert decide(without, with_, default=True).basis == "default"
    assert decide(without, with_, default=True).kept
    assert not decide(without, with_, default=False).kept
    assert "channels_last" in DEFAULT_KEEP


def test_decision_cache_round_trip_and_tolerates_a_broken_file(tmp_path: Path) -> None:
    cache = DecisionCache(tmp_path / "sub" / "decisions.json")
    assert cache.get("k", "channels_last") is None
    cache.put("k", "channels_last", decide(*_rounds(1.9, 0.05, 7, seed=1)))
    again = DecisionCache(cache.path).get("k", "channels_last")
    assert again is not None and again.kept and again.speedup == pytest.approx(1.9, rel=0.1)
    cache.path.write_text("{broken")
    assert cache.get("k", "channels_last") is None
