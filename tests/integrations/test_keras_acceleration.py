"""`KerasAcceleration` inside Keras's own fit, against hand-written references on real MNIST."""

from __future__ import annotations

import numpy as np
import pytest

from jiasu.core.errors import ConfigError
from jiasu.core.recipe import Recipe
from jiasu.data import DatasetSplits
from jiasu.integrations.keras import KerasAcceleration, KerasLookahead, import_keras
from jiasu.train.techniques import Accumulate, ClipNorm, Ema, Lookahead, Threads
from jiasu.train.techniques.averaging import lookahead_update

keras = import_keras()
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _model(seed: int = 0) -> object:
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((28, 28)),
            keras.layers.Flatten(),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10),  # no dropout: the comparison must be deterministic
        ]
    )


def _fit(model: object, x: np.ndarray, y: np.ndarray, batch: int, optimizer: object,
         callbacks: list[object] | None = None) -> list[np.ndarray]:  # fmt: skip
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=optimizer, loss=loss)  # type: ignore[attr-defined]
    model.fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0,  # type: ignore[attr-defined]
              callbacks=callbacks or [])  # fmt: skip
    return [np.asarray(keras.ops.convert_to_numpy(w)) for w in model.trainable_weights]  # type: ignore[attr-defined]


def _mnist(mnist: DatasetSplits, n: int) -> tuple[np.ndarray, np.ndarray]:
    return mnist.train.images[:n, 0].numpy(), mnist.train.labels[:n].numpy()


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_accumulate_k_batches_of_b_equals_one_batch_of_kb(
    mnist: DatasetSplits, optimizer: str
) -> None:
    k, b = 4, 16
    x, y = _mnist(mnist, 10 * k * b)  # whole groups only: Keras carries a short group over
    lr = 0.1 if optimizer == "sgd" else 1e-3
    accumulated = KerasAcceleration(accumulate=k).optimizer(keras.optimizers.get(
        {"class_name": optimizer, "config": {"learning_rate": lr}}))  # fmt: skip
    plain = keras.optimizers.get({"class_name": optimizer, "config": {"learning_rate": lr}})
    got = _fit(_model(), x, y, b, accumulated)
    want = _fit(_model(), x, y, k * b, plain)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=2e-6)
    start = [np.asarray(keras.ops.convert_to_numpy(v)) for v in _model().trainable_weights]
    assert max(np.abs(g - s).max() for g, s in zip(got, start, strict=True)) > 1e-3  # it moved


def test_lookahead_callback_equals_the_plain_function(mnist: DatasetSplits) -> None:
    import torch

    every, alpha, b = 3, 0.5, 32
    x, y = _mnist(mnist, every * b)  # exactly one pull, after the last step
    start = [torch.from_numpy(np.asarray(keras.ops.convert_to_numpy(v))) for v in
             _model().trainable_weights]  # fmt: skip
    fast = [torch.from_numpy(w) for w in _fit(_model(), x, y, b, keras.optimizers.SGD(0.1))]
    lookahead_update(start, fast, alpha)  # the reference: jiasu's plain function
    got = _fit(_model(), x, y, b, keras.optimizers.SGD(0.1), [KerasLookahead(every, alpha)])
    for g, w in zip(got, fast, strict=True):
        np.testing.assert_allclose(g, w.numpy(), rtol=1e-6, atol=1e-7)


def test_lookahead_counts_optimizer_steps_under_accumulation(mnist: DatasetSplits) -> None:
    x, y = _mnist(mnist, 2 * 3 * 32)  # 6 micro-batches = 3 optimizer steps with k=2
    acc = KerasAcceleration(accumulate=2, lookahead_every=3)
    pulled = _fit(_model(), x, y, 32, acc.optimizer(keras.optimizers.SGD(0.1)), acc.callbacks())
    acc_only = KerasAcceleration(accumulate=2).optimizer(keras.optimizers.SGD(0.1))
    not_pulled = _fit(_model(), x, y, 32, acc_only)
    start = [np.asarray(keras.ops.convert_to_numpy(v)) for v in _model().trainable_weights]
    for p, n, s in zip(pulled, not_pulled, start, strict=True):
        np.testing.assert_allclose(p, s + 0.5 * (n - s), rtol=1e-5, atol=1e-6)  # one pull


def test_ema_is_keras_own_and_ends_training_with_the_average(mnist: DatasetSplits) -> None:
    x, y = _mnist(mnist, 256)
    optimizer = KerasAcceleration(ema_decay=0.9).optimizer("adam")
    assert optimizer.use_ema and optimizer.ema_momentum == 0.9
    model = _model()
    weights = _fit(model, x, y, 32, optimizer)
    averages = [np.asarray(keras.ops.convert_to_numpy(v))
                for v in optimizer._model_variables_moving_average]  # fmt: skip
    for w, a in zip(weights, averages, strict=True):
        np.testing.assert_array_equal(w, a)


def test_from_recipe_maps_the_pipeline_and_refuses_what_keras_cannot_do() -> None:
    recipe = Recipe("r", (Accumulate(k=3), Ema(decay=0.99), Lookahead(every=4, alpha=0.3),
                          Threads(num_threads=1)))  # fmt: skip
    acc = KerasAcceleration.from_recipe(recipe)
    assert acc == KerasAcceleration(3, 0.99, 4, 0.3, 1)
    assert [r["name"] for r in acc.plan()] == ["accumulate", "ema", "lookahead", "threads"]
    optimizer = acc.optimizer(keras.optimizers.Adam(learning_rate=0.01))
    assert optimizer.gradient_accumulation_steps == 3
    assert float(keras.ops.convert_to_numpy(optimizer.learning_rate)) == pytest.approx(0.01)
    with pytest.raises(ConfigError, match="clip_norm"):
        KerasAcceleration.from_recipe(Recipe("r", (ClipNorm(),)))
    with pytest.raises(ConfigError, match="mean"):
        KerasAcceleration.from_recipe(Recipe("r", (Accumulate(k=2, reduction="sum"),)))
    with pytest.raises(ConfigError, match="k"):
        KerasAcceleration(accumulate=0)
    with pytest.raises(ConfigError, match="decay"):
        KerasAcceleration(ema_decay=1.5)


def test_threads_callback_sets_and_restores_torch_threads(mnist: DatasetSplits) -> None:
    import torch

    before = torch.get_num_threads()
    seen: list[int] = []

    class Spy(keras.callbacks.Callback):  # type: ignore[name-defined,misc]
        def on_train_batch_end(self, batch: int, logs: object = None) -> None:
            seen.append(torch.get_num_threads())

    x, y = _mnist(mnist, 64)
    acc = KerasAcceleration(threads=1)
    _fit(_model(), x, y, 32, acc.optimizer("sgd"), [*acc.callbacks(), Spy()])
    assert seen == [1, 1]
    assert torch.get_num_threads() == before


def test_an_optimizer_already_used_is_refused(mnist: DatasetSplits) -> None:
    x, y = _mnist(mnist, 32)
    used = keras.optimizers.SGD()
    _fit(_model(), x, y, 32, used)
    with pytest.raises(ConfigError, match="fresh"):
        KerasAcceleration(accumulate=2).optimizer(used)
