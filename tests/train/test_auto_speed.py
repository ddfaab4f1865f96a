"""`--recipe auto` finds what pays on this machine, and never keeps what measured slower
(issue 13: auto trained the zoo slower than the baseline recipe)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from jiasu.data.examples import Examples
from jiasu.hardware.threads import default_threads, threads
from jiasu.train.auto import PROBES, DecisionCache, PriorDecision, auto_recipe, decide
from jiasu.train.auto_budget import size_probe
from jiasu.train.model_arg import ExternalModel
from jiasu.train.objective import REGRESSION, Objective
from jiasu.train.techniques import Threads


def _mlp() -> ExternalModel:
    def build() -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1))

    return ExternalModel("mlp", builder=build)


def _table() -> Examples:
    x = torch.randn(128, 8, generator=torch.Generator().manual_seed(0))
    return Examples.from_arrays(x, x.sum(1))


@pytest.mark.skipif(default_threads() < 2, reason="needs 2 CPUs to run fewer threads")
def test_auto_probes_a_thread_count_other_than_the_one_torch_runs(tmp_path: Path) -> None:
    """torch runs one thread per CPU; auto probed 'all the CPUs' against it: the same run
    timed twice, so the fewer threads that paid 10× on the busy 2-CPU machine were never
    tried. Now it probes half as many, and a probe that changes nothing is not timed."""
    with threads(default_threads()):
        (make,) = [m for m in PROBES if m().name == "threads"]
        technique = make()
        assert isinstance(technique, Threads)
        assert technique.num_threads == max(1, default_threads() // 2)
        result = auto_recipe(
            _mlp(), _table(), epochs=1, objective=Objective(REGRESSION), probe_steps=1,
            repeats=3, max_repeats=3, extra_rounds_s=0.0, probe_budget_s=60.0,
            probes=(Threads, make), decisions=DecisionCache(tmp_path / "d.json"),
        )  # fmt: skip
        assert torch.get_num_threads() == default_threads()  # restored after probing
    same, fewer = result.probes
    assert fewer.outcome in ("kept", "dropped") and fewer.speedup is not None
    assert same.outcome == "not applicable" and same.speedup is None
    assert "changes nothing" in same.reason


def test_a_technique_measured_slower_is_never_kept_on_a_default_or_a_prior() -> None:
    """An undecided probe fell back to DEFAULT_KEEP or this machine's earlier decision
    even when its own rounds measured it slower (the zoo kept techniques at 0.77×)."""
    without = [1.00, 1.30, 0.90, 1.25, 0.95]  # seconds per call, paired by round
    with_ = [1.20, 1.10, 1.30, 1.15, 1.40]  # slower in the median, noisy
    prior = PriorDecision(kept=True, speedup=1.5, at="2026-12-01T00:00:00+00:00")
    for decision in (decide(without, with_, default=True), decide(without, with_, prior=prior)):
        assert decision.speedup < 1 and decision.low < 1.03 <= decision.high  # undecided
        assert not decision.kept and "measured slower" in decision.reason


def test_a_long_step_is_timed_alone_so_a_short_run_still_gets_a_probe() -> None:
    """BERT's steps took 0.5-1.7 s under load: 2 steps a side and a separate warm-up
    round made the smallest probe longer than a short run's whole budget."""
    size = size_probe(4.0, 0.5, steps=12, rounds=5, extra_s=4.0, max_rounds=15)
    assert size is not None and size.steps == 1 and size.rounds == 3
    assert size.seconds(0.5) <= 4.0
