from __future__ import annotations

import math

import pytest
import torch

from jiasu.core.errors import ConfigError
from jiasu.core.recipe import Recipe
from jiasu.data import DatasetSplits, ImageDataset
from jiasu.models import create_model
from jiasu.train import evaluate, fit
from jiasu.train.recipes import fast
from jiasu.train.techniques import DeviceData, FusedOptimizer, Threads


def _model(name: str = "mlp", seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model(name)


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(
        torch.equal(x, y)
        for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


@pytest.mark.slow
def test_founding_classifier_reaches_97_percent_on_mnist_within_3_epochs(
    mnist: DatasetSplits,
) -> None:
    model = _model("mlp")
    history = fit(model, mnist.train, epochs=3, recipe=fast(), quiet=True)
    _, accuracy = evaluate(model, mnist.test.images, mnist.test.labels)
    assert accuracy >= 0.97, f"test accuracy {accuracy:.4f} after 3 epochs"
    assert len(history.epochs) == 3
    assert history.epochs[-1].train_loss < history.epochs[0].train_loss


def test_history_has_every_figure_per_epoch(small_train: ImageDataset) -> None:
    history = fit(_model(), small_train, epochs=2, validation_split=0.2, quiet=True)
    assert [r.epoch for r in history.epochs] == [1, 2]
    for record in history.epochs:
        assert 0 < record.train_loss < 3 and 0 < record.train_accuracy <= 1
        assert record.val_loss is not None and record.val_accuracy is not None
        assert record.lr == pytest.approx(1e-3)
        assert record.train_seconds > 0 and record.val_seconds > 0
        assert record.samples_per_s == pytest.approx(4000 / record.train_seconds)
    assert history.train_seconds == pytest.approx(sum(r.train_seconds for r in history.epochs))


def test_validation_split_holds_out_the_last_fraction_like_keras(small_train: ImageDataset) -> None:
    model = _model()
    fit(model, small_train, epochs=1, validation_split=0.2, quiet=True)
    # the held-out part (last 1,000) is what val figures were computed on: check by hand
    held_out = small_train.take(5000)
    loss, acc = evaluate(model, held_out.images[4000:], held_out.labels[4000:])
    model2 = _model()
    history = fit(model2, small_train, epochs=1, validation_split=0.2, quiet=True)
    assert history.last.val_loss == pytest.approx(loss, rel=1e-6)
    assert history.last.val_accuracy == pytest.approx(acc)


def test_device_data_changes_speed_not_results(small_train: ImageDataset) -> None:
    plain, on_device = _model(), _model()
    h1 = fit(plain, small_train, epochs=2, quiet=True)
    h2 = fit(on_device, small_train, epochs=2, recipe=Recipe("d", (DeviceData(),)), quiet=True)
    assert _same_weights(plain, on_device)
    assert [r.train_loss for r in h1.epochs] == [r.train_loss for r in h2.epochs]
    assert h2.techniques_applied == ["device_data()"]


def test_fused_optimizer_keeps_the_update_within_float_rounding(small_train: ImageDataset) -> None:
    data = small_train.take(1000)
    plain, fused = _model(), _model()
    fit(plain, data, epochs=1, recipe=Recipe("d", (DeviceData(),)), quiet=True)
    fit(fused, data, epochs=1, recipe=Recipe("f", (DeviceData(), FusedOptimizer())), quiet=True)
    for a, b in zip(plain.parameters(), fused.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-4)


def test_fused_optimizer_is_skipped_with_a_reason_when_it_does_not_apply(
    small_train: ImageDataset,
) -> None:
    # every optimizer we register has a foreach or fused step, so use an unregistered name path
    technique = FusedOptimizer()
    from jiasu.train.setup import TrainSetup

    setup = TrainSetup(_model(), torch.device("cpu"), 32, 1e-3, "lbfgs")
    answer = technique.applies_to(setup)
    assert not answer and "lbfgs" in answer.reason


def test_seeded_runs_are_reproducible(small_train: ImageDataset) -> None:
    a, b = _model(seed=1), _model(seed=1)
    ha = fit(a, small_train.take(2000), epochs=2, seed=5, recipe=fast(), quiet=True)
    hb = fit(b, small_train.take(2000), epochs=2, seed=5, recipe=fast(), quiet=True)
    assert _same_weights(a, b)
    assert [r.train_loss for r in ha.epochs] == [r.train_loss for r in hb.epochs]
    c = _model(seed=1)
    fit(c, small_train.take(2000), epochs=2, seed=6, recipe=fast(), quiet=True)
    assert not _same_weights(a, c)


def test_threads_technique_sets_and_restores_the_thread_count(small_train: ImageDataset) -> None:
    before = torch.get_num_threads()
    history = fit(
        _model(), small_train.take(500), epochs=1, recipe=Recipe("t", (Threads(1),)), quiet=True
    )
    assert history.techniques_applied == ["threads(num_threads=1)"]
    assert torch.get_num_threads() == before


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epochs": 0}, "epochs must be a positive integer, got 0"),
        ({"batch_size": -3}, "batch_size must be a positive integer, got -3"),
        ({"validation_split": 1.5}, r"validation_split must be in \[0, 1\), got 1.5"),
        ({"optimizer": "adamm"}, "unknown optimizer 'adamm' .*did you mean 'adam'"),
        ({"lr": -1.0}, "learning rate must be a positive finite number, got -1.0"),
        ({"lr": math.inf}, "learning rate must be a positive finite number, got inf"),
        ({"device": "tpu9"}, "tpu9"),
    ],
)
def test_bad_arguments_give_one_clear_error(
    small_train: ImageDataset, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        fit(_model(), small_train.take(64), quiet=True, **kwargs)  # type: ignore[arg-type]


def test_wrong_data_shapes_are_named() -> None:
    flat = (torch.zeros(10, 784), torch.arange(10))
    with pytest.raises(ConfigError, match=r"the model fails on the training inputs "
                       r"input:float32\[B,784\] \(.*\); make it take them"):  # fmt: skip
        fit(_model("cnn"), flat, quiet=True)
    with pytest.raises(ConfigError, match="every target is class 0; a classification needs"):
        fit(_model(), (torch.zeros(10, 784), torch.zeros(10, dtype=torch.long)), quiet=True)


def test_plain_tensors_and_uint8_images_are_accepted() -> None:
    images = torch.randint(0, 256, (64, 28, 28), dtype=torch.uint8)
    labels = torch.arange(64) % 10
    history = fit(_model(), (images, labels), epochs=1, batch_size=16, quiet=True)
    assert len(history.epochs) == 1
