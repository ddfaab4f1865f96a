"""Each training technique against a hand-written reference, plus a conformance suite."""

from __future__ import annotations

import dataclasses
import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from jiasu.core.errors import ConfigError, TrainingDivergedError
from jiasu.core.recipe import Recipe
from jiasu.core.technique import TECHNIQUES, Exactness, Stage
from jiasu.data import ImageDataset
from jiasu.models import create_model
from jiasu.train import fit
from jiasu.train.setup import BoundRun, StepAction, TrainSetup, TrainTechnique
from jiasu.train.techniques import (
    Accumulate,
    ChannelsLast,
    DeviceData,
    Ema,
    GradFn,
    LabelSmoothing,
    LargeBatch,
    Lookahead,
    OneCycle,
    SkipNonfinite,
)
from jiasu.train.techniques.schedule import one_cycle_lr


def _mlp(seed: int = 0, dropout: float = 0.2) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model("mlp", dropout=dropout)


def _params(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


# --- accumulate --------------------------------------------------------------------------
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_accumulating_k_batches_of_b_equals_one_batch_of_kb(
    small_train: ImageDataset, optimizer: str
) -> None:
    data = small_train.take(1024)  # divisible by 32: every group is complete
    big, small = _mlp(dropout=0.0), _mlp(dropout=0.0)
    common = dict(epochs=2, optimizer=optimizer, lr=0.01, quiet=True, seed=4)
    fit(big, data, batch_size=32, recipe=Recipe("b", (DeviceData(),)), **common)
    fit(small, data, batch_size=8, recipe=Recipe("a", (DeviceData(), Accumulate(k=4))), **common)
    for a, b in zip(big.parameters(), small.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_accumulate_sum_adds_gradients_and_steps_every_k() -> None:
    model = torch.nn.Linear(3, 1)
    hooks = Accumulate(k=3, reduction="sum").start(_bound(model))
    assert hooks is not None
    x = torch.randn(6, 3)
    expected = torch.autograd.grad(model(x).sum(), model.weight)[0]
    actions = []
    for i in range(3):
        loss = hooks.scale_loss(model(x[2 * i : 2 * i + 2]).sum())
        loss.backward()
        actions.append(hooks.after_backward(model, last_in_epoch=False))
    assert actions == [StepAction.DEFER, StepAction.DEFER, StepAction.STEP]
    torch.testing.assert_close(model.weight.grad, expected)


def test_a_short_last_group_steps_with_the_mean_of_what_it_has() -> None:
    model = torch.nn.Linear(3, 1, bias=False)
    hooks = Accumulate(k=4).start(_bound(model))
    assert hooks is not None
    x = torch.randn(2, 3)
    for i in range(2):
        hooks.scale_loss(model(x[i : i + 1]).sum()).backward()
        action = hooks.after_backward(model, last_in_epoch=i == 1)
    assert action is StepAction.STEP
    torch.testing.assert_close(model.weight.grad, x.mean(dim=0, keepdim=True))


# --- ema and lookahead -------------------------------------------------------------------
def test_ema_equals_the_closed_form() -> None:
    model = torch.nn.Linear(2, 2)
    decay = 0.9
    hooks = Ema(decay=decay).start(_bound(model))
    assert hooks is not None
    history = [model.weight.detach().clone()]
    for step in range(5):
        with torch.no_grad():
            model.weight.copy_(torch.full((2, 2), float(step + 1)))
        history.append(model.weight.detach().clone())
        hooks.after_step(model)
    n = len(history) - 1
    closed = decay**n * history[0] + sum(
        (1 - decay) * decay ** (n - t) * history[t] for t in range(1, n + 1)
    )
    with hooks.eval_weights(model):
        torch.testing.assert_close(model.weight, closed)
    torch.testing.assert_close(model.weight, history[-1])  # live weights restored
    hooks.on_train_end(model)
    torch.testing.assert_close(model.weight, closed)


def test_ema_in_fit_leaves_the_averaged_weights_in_the_model(small_train: ImageDataset) -> None:
    plain, averaged = _mlp(), _mlp()
    data = small_train.take(500)
    fit(plain, data, epochs=1, quiet=True, recipe=Recipe("p", (DeviceData(),)))
    fit(averaged, data, epochs=1, quiet=True, recipe=Recipe("e", (DeviceData(), Ema(decay=0.5))))
    assert not torch.equal(plain[1].weight, averaged[1].weight)


def test_lookahead_pulls_fast_weights_toward_slow_ones() -> None:
    model = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    hooks = Lookahead(every=2, alpha=0.5).start(_bound(model))
    assert hooks is not None
    for value in (1.0, 2.0):  # two fast steps move the weight to 2.0
        with torch.no_grad():
            model.weight.fill_(value)
        hooks.after_step(model)
    # slow = 0 + 0.5 · (2 − 0) = 1, and the fast weights are reset to it
    assert model.weight.item() == pytest.approx(1.0)


# --- skip non-finite, user function --------------------------------------------------------
def _nan_gradients(grads: list[torch.Tensor]) -> list[torch.Tensor]:
    return [torch.full_like(g, math.nan) for g in grads]


def test_skip_nonfinite_skips_a_nan_step_and_leaves_the_weights(small_train: ImageDataset) -> None:
    model = _mlp()
    before = _params(model)
    recipe = Recipe("nan", (GradFn(fn=_nan_gradients), SkipNonfinite()))
    fit(model, small_train.take(256), epochs=1, quiet=True, recipe=recipe)
    for a, b in zip(before, model.parameters(), strict=True):
        assert torch.equal(a, b)
    broken = _mlp()
    with pytest.raises(TrainingDivergedError, match="training diverged in epoch 1"):
        fit(
            broken,
            small_train.take(64),
            epochs=1,
            quiet=True,
            recipe=Recipe("n", (GradFn(fn=_nan_gradients),)),
        )
    assert torch.isnan(broken[1].weight).all()  # without skip_nonfinite the run goes NaN


def test_grad_fn_identity_changes_nothing(small_train: ImageDataset) -> None:
    plain, identity = _mlp(), _mlp()
    data = small_train.take(512)
    fit(plain, data, epochs=1, quiet=True)
    fit(identity, data, epochs=1, quiet=True, recipe=Recipe("i", (GradFn(),)))
    for a, b in zip(plain.parameters(), identity.parameters(), strict=True):
        assert torch.equal(a, b)


def test_grad_fn_from_a_string_and_bad_strings() -> None:
    technique = GradFn(fn="jiasu.train.techniques.gradients:identity")
    assert Recipe.from_dict(Recipe("r", (technique,)).to_dict()) == Recipe("r", (technique,))
    with pytest.raises(ConfigError, match=r"package\.module:function"):
        GradFn(fn="identity")
    with pytest.raises(ConfigError, match="cannot import"):
        GradFn(fn="no.such.module:fn")
    with pytest.raises(ConfigError, match="holds a Python object"):
        Recipe("r", (GradFn(fn=_nan_gradients),)).to_toml()


# --- layout, precision, schedules ----------------------------------------------------------
def test_channels_last_gives_the_same_outputs() -> None:
    torch.manual_seed(0)
    model = create_model("cnn").eval()
    x = torch.rand(16, 1, 28, 28)
    reference = model(x)
    nhwc = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    out = nhwc(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out, reference, atol=1e-5, rtol=1e-5)


def test_channels_last_does_not_apply_to_an_mlp() -> None:
    answer = ChannelsLast().applies_to(_setup(_mlp()))
    assert not answer and "no convolution" in answer.reason


def test_label_smoothing_is_torch_cross_entropy_with_smoothing(small_train: ImageDataset) -> None:
    data = small_train.take(256)
    history = fit(
        _mlp(dropout=0), data, epochs=1, quiet=True, recipe=Recipe("s", (LabelSmoothing(0.2),))
    )
    # a uniform prediction has loss log(10) with or without smoothing: check the loss is sane
    assert 0.3 < history.last.train_loss < math.log(10) + 0.5
    logits, labels = torch.randn(4, 10), torch.tensor([1, 2, 3, 4])
    smooth = 0.2
    manual = (1 - smooth) * F.cross_entropy(logits, labels) + smooth * (
        -F.log_softmax(logits, 1).mean(1).mean()
    )
    torch.testing.assert_close(F.cross_entropy(logits, labels, label_smoothing=smooth), manual)


def test_large_batch_scales_the_learning_rate() -> None:
    setup = _setup(_mlp())
    for rule, factor in (("linear", 8.0), ("sqrt", math.sqrt(8.0)), ("none", 1.0)):
        configured = LargeBatch(batch_size=256, lr_scaling=rule).configure(setup)  # type: ignore[arg-type]
        assert configured.batch_size == 256
        assert configured.lr == pytest.approx(setup.lr * factor)
    assert not LargeBatch(batch_size=16).applies_to(setup)


def test_one_cycle_rises_to_the_peak_then_anneals() -> None:
    lrs = [
        one_cycle_lr(s, max_lr=1.0, total_steps=100, pct_start=0.25, div=25, final_div=1e3)
        for s in range(101)
    ]
    assert lrs[0] == pytest.approx(1 / 25)
    assert max(lrs) == pytest.approx(1.0) and lrs.index(max(lrs)) == 25
    assert lrs[-1] == pytest.approx(1e-3)
    assert all(a <= b for a, b in itertools.pairwise(lrs[:26]))
    assert all(a >= b for a, b in itertools.pairwise(lrs[25:]))


def test_one_cycle_in_fit_changes_the_learning_rate_each_epoch(small_train: ImageDataset) -> None:
    history = fit(
        _mlp(), small_train.take(640), epochs=3, quiet=True, recipe=Recipe("o", (OneCycle(),))
    )
    lrs = [r.lr for r in history.epochs]
    assert lrs[0] == pytest.approx(1e-3 * 4 / 25)  # epoch 1 starts at max_lr / div
    assert lrs[1] > lrs[0] and lrs[2] < lrs[1]


# --- conformance over every registered training technique ---------------------------------
TRAINING = [name for name in TECHNIQUES.names() if TECHNIQUES.get(name).effect.stage is Stage.TRAIN]


@pytest.mark.parametrize("name", TRAINING)
def test_conformance(name: str, small_train: ImageDataset) -> None:
    technique = TECHNIQUES.get(name)()
    assert isinstance(technique, TrainTechnique)
    # the recipe round trip keeps the technique as it was
    recipe = Recipe("one", (technique,))
    assert Recipe.from_json(recipe.to_json()) == recipe
    assert Recipe.from_toml(recipe.to_toml()) == recipe
    # applies_to is honest: yes, or no with a reason
    for model_name in ("mlp", "cnn"):
        answer = technique.applies_to(_setup(create_model(model_name)))
        assert answer.ok or answer.reason
    # applying it keeps the results within what its exactness promises
    data = small_train.take(256)
    reference, candidate = _mlp(dropout=0.0), _mlp(dropout=0.0)
    fit(reference, data, epochs=1, quiet=True, recipe=Recipe("ref", (DeviceData(),)))
    names = ["device_data"] if name == "device_data" else ["device_data", name]
    history = fit(
        candidate,
        data,
        epochs=1,
        quiet=True,
        recipe=Recipe("c", tuple(TECHNIQUES.get(n)() for n in names)),
    )
    applied = name in {entry.split("(")[0] for entry in history.techniques_applied}
    skipped = {entry["name"] for entry in history.techniques_skipped}
    assert applied != (name in skipped)
    if not applied:
        return
    tolerance = {Exactness.EXACT: 1e-6, Exactness.NUMERIC: 2e-2, Exactness.APPROXIMATE: None}
    atol = tolerance[technique.effect.exactness]
    for a, b in zip(reference.parameters(), candidate.parameters(), strict=True):
        assert torch.isfinite(b).all()
        if atol is not None:
            torch.testing.assert_close(b, a, atol=atol, rtol=0)


def _bound(model: torch.nn.Module) -> BoundRun:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    return BoundRun(model, optimizer, _setup(model))


def _setup(model: torch.nn.Module) -> TrainSetup:
    return TrainSetup(
        model, torch.device("cpu"), 32, 1e-3, "adam", num_train_samples=1000, epochs=1
    )


def test_every_technique_is_a_frozen_dataclass() -> None:
    for name in TECHNIQUES.names():
        assert dataclasses.is_dataclass(TECHNIQUES.get(name))
