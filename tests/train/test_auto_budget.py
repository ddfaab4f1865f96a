"""`--recipe auto` on models that are not MNIST classifiers, within a probe budget, with
progress, reporting every technique's outcome and why (issue 13, item 6)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from jiasu.core.errors import ConfigError
from jiasu.core.task import Task
from jiasu.data import ImageDataset
from jiasu.data.examples import Examples
from jiasu.models import create_model
from jiasu.train import auto as auto_module
from jiasu.train.auto import PROBES, AutoRecipe, DecisionCache, auto_recipe
from jiasu.train.auto_budget import MIN_BUDGET_S, PlannedTime, ProbeBudget, size_probe
from jiasu.train.model_arg import ExternalModel
from jiasu.train.objective import REGRESSION, Objective
from jiasu.train.recipes import schedule_for, unlike_mnist
from jiasu.train.techniques import DeviceData, FusedOptimizer, Threads
from jiasu.ui.progress import TaskProgress

OUTCOMES = {"kept", "dropped", "not applicable", "not probed"}


def _table(n: int = 256) -> Examples:
    """A made-up table: y = sum of 8 features (a regression)."""
    x = torch.randn(n, 8, generator=torch.Generator().manual_seed(0))
    return Examples.from_arrays(x, x.sum(1))


def _table_mlp() -> ExternalModel:
    def build() -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1))

    return ExternalModel("table-mlp", builder=build)


def _auto(tmp_path: Path, budget: float | None, **kwargs: Any) -> tuple[AutoRecipe, float]:
    started = time.perf_counter()
    result = auto_recipe(
        _table_mlp(), _table(), epochs=1, objective=Objective(REGRESSION), probe_steps=4,
        repeats=3, extra_rounds_s=0.5, probe_budget_s=budget,
        decisions=DecisionCache(tmp_path / "decisions.json"), **kwargs,
    )  # fmt: skip
    return result, time.perf_counter() - started


def test_a_small_budget_ends_auto_in_time_and_names_what_it_did_not_probe(
    tmp_path: Path,
) -> None:
    budget = 0.5
    result, elapsed = _auto(tmp_path, budget)
    # every technique appears once, with its outcome and why
    assert [p.name for p in result.probes] == [make().name for make in PROBES]
    for probe in result.probes:
        assert probe.outcome in OUTCOMES and probe.reason and probe.seconds is not None
    not_probed = [p for p in result.probes if p.outcome == "not probed"]
    # compiling may take longer than the whole budget: skipped with the reason, not run
    assert "compile" in {p.name for p in not_probed}
    for probe in not_probed:
        assert not probe.kept and f"probe budget ({budget:.1f} s)" in probe.reason
        assert probe.speedup is None and probe.seconds < 1.0  # nothing was trained
    # a probe runs only if it started within the budget ...
    started = 0.0
    for probe in result.probes:
        if probe.outcome in ("kept", "dropped"):
            assert started < budget, (probe.name, started)
        started += probe.seconds
    # ... so the step ends within the timing, the budget and one probe's overrun
    ran = [p.seconds for p in result.probes if p.outcome in ("kept", "dropped")]
    skipped = sum(p.seconds for p in result.probes if p.outcome not in ("kept", "dropped"))
    margin = max(ran, default=0.0) + skipped
    assert result.elapsed_s <= result.setup_s + budget + margin + 0.1 * elapsed
    assert result.budget_s == budget and "as given" in result.budget_line()


def test_a_convolutional_model_probes_channels_last_before_device_data(tmp_path: Path) -> None:
    images = Examples.from_arrays(torch.rand(64, 3, 16, 16), torch.arange(64) % 2)

    def build() -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(784, 2))

    conv = ExternalModel("conv", builder=build)
    result = auto_recipe(conv, images, epochs=1, probe_budget_s=1e-3,
                         decisions=DecisionCache(tmp_path / "d.json"))  # fmt: skip
    names = [p.name for p in result.probes]
    assert names.index("channels_last") < names.index("device_data")  # RESULTS: it pays there
    assert sorted(names) == sorted(make().name for make in PROBES)


def test_a_compute_bound_step_probes_the_arithmetic_cutting_techniques_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = [make() for make in PROBES]
    short = auto_module._most_promising_first(made, has_conv=False, step_s=0.01)
    assert [c.name for c in short] == [c.name for c in made]  # overheads matter: as listed
    long = [c.name for c in auto_module._most_promising_first(made, has_conv=True, step_s=0.5)]
    assert long[:3] == ["device_placement", "mixed_precision", "channels_last"], long
    assert long.index("channels_last") < long.index("device_data")
    assert sorted(long) == sorted(c.name for c in made)
    # through auto: the order follows the step time it measured (here any step counts as
    # compute-bound), and every technique is still reported
    monkeypatch.setattr(auto_module, "COMPUTE_BOUND_STEP_S", 0.0)
    result, _ = _auto(tmp_path, 1e-3)
    names = [p.name for p in result.probes]
    assert names[:3] == ["device_placement", "mixed_precision", "channels_last"], names
    assert sorted(names) == sorted(c.name for c in made)


def test_a_spent_budget_reports_the_rest_as_not_probed(tmp_path: Path) -> None:
    result, _ = _auto(tmp_path, 1e-3, probes=(Threads, DeviceData, FusedOptimizer))
    # building the first probe's run alone takes longer than a millisecond
    last = result.probes[-1]
    assert last.outcome == "not probed"
    assert last.reason == "not probed: the probe budget (0.0 s) was spent"
    assert result.recipe.names() == []  # nothing probed is kept; a regression has no schedule
    assert {d["name"] for d in result.dropped()} == {"threads", "device_data", "fused_optimizer"}


def test_a_spent_budget_still_reports_what_cannot_apply_here(tmp_path: Path) -> None:
    """CUDA graphs on a CPU run is "not applicable" (with the reason), never "not probed"."""
    from jiasu.train.techniques.compile import CudaGraphs

    result, _ = _auto(tmp_path, 1e-3, probes=(Threads, CudaGraphs))
    outcome = {p.name: (p.outcome, p.reason) for p in result.probes}
    assert outcome["cuda_graphs"][0] == "not applicable"
    assert "CUDA" in outcome["cuda_graphs"][1]


def test_the_default_budget_is_a_tenth_of_the_planned_training() -> None:
    planned = PlannedTime(step_s=0.05, steps_per_epoch=400, epochs=5)  # 100 s of training
    budget = ProbeBudget(None, planned)
    assert budget.seconds == pytest.approx(10.0)
    assert "10% of the 100.0 s planned (50.0 ms a step × 400 steps × 5 epoch(s))" in budget.why
    short = ProbeBudget(None, PlannedTime(0.001, 10, 1))
    assert short.seconds == MIN_BUDGET_S and "minimum" in short.why
    assert ProbeBudget(30.0, planned).seconds == 30.0
    with pytest.raises(ConfigError, match="positive number of seconds"):
        auto_recipe(_table_mlp(), _table(), epochs=1, probe_budget_s=-1.0)
    with pytest.raises(ConfigError, match="target metric must be a positive number"):
        auto_recipe(_table_mlp(), _table(), epochs=1, target="fast")  # type: ignore[arg-type]


def test_a_probe_is_sized_to_its_share_of_the_budget() -> None:
    full = size_probe(100.0, 0.01, steps=12, rounds=5, extra_s=4.0, max_rounds=15)
    assert full is not None and (full.steps, full.rounds) == (12, 5)
    # a probe costs steps × (2 + 2 × rounds) × 10 ms (its loss check warms both sides
    # up): down to half the steps first ...
    half = size_probe(1.0, 0.01, steps=12, rounds=5, extra_s=4.0, max_rounds=15)
    assert half is not None and (half.steps, half.rounds) == (8, 5)
    # ... then fewer rounds, then fewer steps
    small = size_probe(0.5, 0.01, steps=12, rounds=5, extra_s=4.0, max_rounds=15)
    assert small is not None and (small.steps, small.rounds) == (6, 3)
    assert small.seconds(0.01) <= 0.5 and small.extra_s <= 0.5 - small.seconds(0.01) + 1e-9
    assert size_probe(0.05, 0.01, steps=12, rounds=5, extra_s=4.0, max_rounds=15) is None


def test_schedules_tuned_on_mnist_are_not_applied_to_other_runs() -> None:
    mnist_like = Examples.from_arrays(torch.rand(64, 1, 28, 28), torch.arange(64) % 10)
    classification = Task("classification", "accuracy")
    assert unlike_mnist(mnist_like, classification) is None
    assert unlike_mnist(_table(), REGRESSION) == "a regression"
    assert "own loss" in str(unlike_mnist(mnist_like, classification, custom_loss=True))
    photos = Examples.from_arrays(torch.rand(8, 3, 32, 32), torch.arange(8) % 2)
    assert "not 1×28×28 images" in str(unlike_mnist(photos, classification))
    tokens = Examples.from_arrays(
        {"input_ids": torch.zeros(8, 12, dtype=torch.int64),
         "attention_mask": torch.ones(8, 12, dtype=torch.int64)}, torch.arange(8) % 2,
    )  # fmt: skip
    assert "input_ids:int64" in str(unlike_mnist(tokens, classification))
    loader = DataLoader(TensorDataset(torch.rand(8, 1, 28, 28), torch.arange(8) % 10))
    assert "DataLoader" in str(unlike_mnist(loader, classification))
    many = Examples.from_arrays(torch.rand(64, 1, 28, 28), torch.arange(64) % 47)
    assert "47 classes" in str(unlike_mnist(many, classification))
    techniques, why = schedule_for(create_model("cnn"), 60_000, unlike="a regression")
    assert techniques == [] and "tuned on MNIST" in why and "a regression" in why
    mnist, why = schedule_for(create_model("cnn"), 60_000)  # MNIST's demo: unchanged
    assert [t.name for t in mnist] == ["large_batch", "one_cycle", "label_smoothing"]
    assert "tuned on MNIST" in why


def test_a_regression_gets_no_mnist_schedule_and_the_report_says_why(tmp_path: Path) -> None:
    result, _ = _auto(tmp_path, 600.0, probes=(DeviceData,))
    assert not {"large_batch", "one_cycle", "label_smoothing"} & set(result.recipe.names())
    rows = {d["name"]: d for d in result.decisions()}
    assert rows["schedule"]["outcome"] == "not applied"
    assert "tuned on MNIST" in rows["schedule"]["reason"]
    assert "a regression" in rows["schedule"]["reason"]
    assert rows["device_data"]["outcome"] in ("kept", "dropped")
    assert "rounds" in rows["device_data"]["reason"]  # its ratio, interval and rounds


def test_the_mnist_run_keeps_its_schedule(small_train: ImageDataset, tmp_path: Path) -> None:
    data = Examples.from_images(small_train.take(1000))
    result = auto_recipe(
        _mnist_mlp(), data, epochs=1, probe_steps=2, repeats=3, probes=(),
        decisions=DecisionCache(tmp_path / "d.json"),
    )  # fmt: skip
    assert result.recipe.names() == ["one_cycle"]  # 1,000 samples: no larger batch
    assert all("tuned on MNIST" in note for note in result.schedule)
    assert result.decisions()[-1]["outcome"] == "kept"


def _mnist_mlp() -> ExternalModel:
    return ExternalModel("mlp", builder=lambda: create_model("mlp"))


class _Recorder(TaskProgress):
    """A TaskProgress that records what it would show."""

    shown: ClassVar[list[str]] = []
    enabled_flags: ClassVar[list[bool]] = []

    def __init__(self, *, enabled: bool) -> None:
        super().__init__(enabled=False)  # nothing drawn on the test's stderr
        _Recorder.enabled_flags.append(enabled)

    def start(self, description: str, total: int) -> None:
        _Recorder.shown.append(f"{description} /{total}")

    def advance(self, steps: int = 1, status: str | None = None) -> None:
        _Recorder.shown.append(str(status))


def test_progress_names_the_technique_being_probed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auto_module, "TaskProgress", _Recorder)
    monkeypatch.setattr(auto_module, "progress_enabled", lambda quiet: not quiet)
    _Recorder.shown.clear()
    _auto(tmp_path, 600.0, probes=(DeviceData, FusedOptimizer), quiet=False)
    shown = _Recorder.shown
    assert shown[0] == "auto: probing techniques /2"
    assert shown[1] == "timing the recipe without probes"
    assert shown[2].startswith("device_data (") and "s left)" in shown[2]
    assert shown[3] in ("device_data: kept", "device_data: dropped")
    assert shown[4].startswith("fused_optimizer (")
    assert _Recorder.enabled_flags[-1] is True
    _auto(tmp_path, 600.0, probes=(), quiet=True)
    assert _Recorder.enabled_flags[-1] is False  # quiet: no bar


@pytest.mark.slow
def test_auto_on_a_tiny_bert_classifier_probes_within_its_default_budget() -> None:
    transformers = pytest.importorskip("transformers")
    from jiasu.train import fit

    config = transformers.BertConfig(
        vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=16, num_labels=2,
    )  # fmt: skip
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(config)
    ids = torch.randint(5, 40, (128, 12), generator=torch.Generator().manual_seed(0))
    data = ({"input_ids": ids, "attention_mask": torch.ones_like(ids)}, torch.arange(128) % 2)
    history = fit(model, data, epochs=1, batch_size=32, recipe="auto", quiet=True)
    skipped = {s["name"]: s["reason"] for s in history.techniques_skipped}
    assert "label_smoothing" not in " ".join(history.techniques_applied)  # no MNIST schedule
    assert "not probed" in skipped["compile"]  # 10% of a second's training: no compiling
    assert all(reason.startswith("auto: ") for reason in skipped.values())


def test_a_target_makes_auto_choose_the_length_and_training_stops_there(
    tmp_path: Path,
) -> None:
    from jiasu.train import fit

    g = torch.Generator().manual_seed(0)
    x = torch.randn(512, 8, generator=g)
    y = (x[:, 0] > 0).long()  # a separable two-class table
    data = Examples.from_arrays(x, y)

    def build() -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))

    result = auto_recipe(
        ExternalModel("table-classifier", builder=build), data, epochs=1, probes=(),
        target=0.9, decisions=DecisionCache(tmp_path / "d.json"),
    )  # fmt: skip
    length = result.target_length
    assert length is not None and length.epochs == 20 and length.checks_per_epoch == 4
    assert "no schedule depends on the length" in length.why
    history = fit(build(), data, epochs=length.epochs, lr=1e-2, recipe=result.recipe,
                  quiet=True, target_accuracy=0.9, target_data=data,
                  target_checks_per_epoch=length.checks_per_epoch)  # fmt: skip
    assert history.time_to_target_s is not None  # reached, so it stopped ...
    assert len(history.epochs) < length.epochs  # ... well before the cap
    # MNIST's schedule sizes its one-cycle from the cap: twice the epochs it was tuned at
    mnist = Examples.from_arrays(torch.rand(256, 1, 28, 28), torch.arange(256) % 10)
    tuned = auto_recipe(_mnist_mlp(), mnist, epochs=1, probes=(), target=0.99,
                        decisions=DecisionCache(tmp_path / "d.json"))  # fmt: skip
    assert tuned.target_length is not None and tuned.target_length.epochs == 10
    assert "tuned on MNIST" in tuned.target_length.why
    assert auto_recipe(_mnist_mlp(), mnist, epochs=1, probes=()).target_length is None
