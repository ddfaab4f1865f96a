"""Keras models through jiasu: `jiasu.fit`, `.keras` files, `jiasu optimize`, ONNX from Keras/TF."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import jiasu
from jiasu.core.errors import CheckpointError, ConfigError
from jiasu.data import DatasetSplits
from jiasu.infer import OptimizeConfig, optimize, resolve_model
from jiasu.integrations.keras import (
    KerasModule,
    as_torch_module,
    fit_keras,
    import_keras,
    load_keras_as_torch,
)
from jiasu.integrations.onnx_input import adapt_onnx_input

keras = import_keras()
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")


def founding_model() -> object:
    """The founding document's model, corrected (as in examples/founding_keras.py)."""
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(),
                             keras.layers.Dense(64, activation="relu"), keras.layers.Dropout(0.2),
                             keras.layers.Dense(10)])  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, mnist: DatasetSplits) -> Path:
    """A `.keras` file trained by jiasu.fit for one epoch on 12,000 MNIST images."""
    path = tmp_path_factory.mktemp("keras") / "founding.keras"
    module, history = fit_keras(founding_model(), mnist.train.take(12_000), epochs=1,
                                batch_size=64, quiet=True, save=path)  # fmt: skip
    assert isinstance(module, KerasModule) and history.epochs[-1].train_accuracy > 0.7
    return path


def _keras_predict(path: Path, images: np.ndarray) -> np.ndarray:
    model = keras.saving.load_model(path, compile=False)
    return np.asarray(model.predict(images[:, 0], batch_size=512, verbose=0))  # (N, 28, 28) in


def test_the_module_passes_training_and_reshapes_images() -> None:
    module = as_torch_module(founding_model())
    x = torch.rand(8, 1, 28, 28)
    module.train()
    assert not torch.equal(module(x), module(x))  # Keras Dropout sees training=True
    module.eval()
    assert torch.equal(module(x), module(x))
    assert module.layout == "reshape" and module(x).shape == (8, 10)
    names = [n for n, _ in module.named_parameters()]
    assert len(names) == 4 and not any("seed" in n for n in names)  # trainable only


def test_jiasu_fit_trains_the_keras_model_itself(mnist: DatasetSplits) -> None:
    model = founding_model()
    before = np.asarray(keras.ops.convert_to_numpy(model.trainable_weights[0])).copy()
    history = jiasu.fit(as_torch_module(model), mnist.train.take(4_000), epochs=1,
                        batch_size=64, quiet=True)  # fmt: skip
    after = np.asarray(keras.ops.convert_to_numpy(model.trainable_weights[0]))
    assert history.epochs[-1].train_accuracy > 0.6
    assert np.abs(after - before).max() > 1e-3  # the Keras variables were trained


def test_optimized_keras_model_agrees_with_keras_predict(
    trained: Path, mnist: DatasetSplits, tmp_path: Path
) -> None:
    test = mnist.test.take(2_000)
    images, labels = test.images.numpy(), test.labels.numpy()
    expected = _keras_predict(trained, images)
    source = resolve_model(str(trained))
    assert source.kind == "torch" and source.input_shape == (1, 28, 28)
    config = OptimizeConfig("throughput", backends=("torch", "onnxruntime"), measure_s=0.5,
                            warmup=1)  # fmt: skip
    calibration = mnist.train.images[-300:].numpy()
    result = optimize(source, images, labels, calibration, config, out=tmp_path / "art")
    assert result.get("onnxruntime").verdict == "accepted"  # fp32 ONNX of the Keras model
    predictor = jiasu.load(tmp_path / "art")
    got = predictor(images)
    agreement = float((got.argmax(1) == expected.argmax(1)).mean())
    if predictor.name in ("torch-eager", "onnxruntime", "onnxruntime-1thread"):  # fp32 ones
        assert agreement >= 0.99
        np.testing.assert_allclose(got, expected, atol=1e-4)
    else:  # an int8 pick is accepted on accuracy, not agreement: 98.8 % agreement was seen
        assert agreement >= 0.97
    # the eager artifact is the module's torch.export graph: the same function, no Keras file
    eager = optimize(source, images, labels, calibration,
                     OptimizeConfig("throughput", backends=("torch",), measure_s=0.2, warmup=1),
                     out=tmp_path / "eager")  # fmt: skip
    assert eager.chosen_name == "torch-eager"
    np.testing.assert_allclose(jiasu.load(tmp_path / "eager")(images), expected, atol=1e-5)


def test_onnx_exported_by_keras_is_optimized_after_adapting_its_input(
    trained: Path, mnist: DatasetSplits, tmp_path: Path
) -> None:
    model = keras.saving.load_model(trained, compile=False)
    model.predict(np.zeros((1, 28, 28), np.float32), verbose=0)  # Keras exports called models only
    model.export(str(tmp_path / "keras.onnx"), format="onnx", verbose=False)  # input (N, 28, 28)
    test = mnist.test.take(1_000)
    images, labels = test.images.numpy(), test.labels.numpy()
    expected = _keras_predict(trained, images)
    assert resolve_model(str(tmp_path / "keras.onnx")).input_shape == (28, 28)  # TF's layout
    adapted = adapt_onnx_input(tmp_path / "keras.onnx", tmp_path / "nchw.onnx")
    source = resolve_model(str(adapted))
    assert source.kind == "onnx" and source.input_shape == (1, 28, 28)
    config = OptimizeConfig("throughput", backends=("onnxruntime",), measure_s=0.3, warmup=1)
    result = optimize(source, images, labels, images[:100], config, out=tmp_path / "art")
    got = jiasu.load(tmp_path / "art")(images)
    assert result.candidates and (got.argmax(1) == expected.argmax(1)).mean() >= 0.99


def test_bad_keras_inputs_are_one_sentence_errors(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        load_keras_as_torch(tmp_path / "missing.keras")
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="cannot be loaded as a Keras model"):
        load_keras_as_torch(tmp_path / "junk.keras")
    with pytest.raises(ConfigError, match=r"keras\.Model"):
        as_torch_module(torch.nn.Linear(2, 2))
    wrong = keras.Sequential([keras.Input((10,)), keras.layers.Dense(2)])
    with pytest.raises(ConfigError, match="cannot be reshaped"):
        as_torch_module(wrong)


def test_another_keras_backend_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keras.config, "backend", lambda: "jax")  # as if imported with jax first
    with pytest.raises(ConfigError, match="'jax' backend; set KERAS_BACKEND=torch"):
        load_keras_as_torch("model.keras")
    code = "import jiasu.integrations.keras"
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}  # chosen, but not installed here
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert "ConfigError: Keras could not start its 'tensorflow' backend" in out.stderr or (
        out.returncode == 0  # tensorflow is installed in this environment
    )


TF_SCRIPT = """
import os, sys
os.environ["KERAS_BACKEND"] = "tensorflow"
import numpy as np, tensorflow as tf, keras, tf2onnx
keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(),
                          keras.layers.Dense(32, activation="relu"), keras.layers.Dense(10)])
x = np.load(sys.argv[1])
spec = (tf.TensorSpec((None, 28, 28), tf.float32, name="images"),)
fn = tf.function(lambda t: model(t, training=False), input_signature=spec)
tf2onnx.convert.from_function(fn, input_signature=spec, opset=17, output_path=sys.argv[2])
np.save(sys.argv[3], model.predict(x, verbose=0))
"""


@pytest.mark.skipif(
    not os.environ.get("JIASU_TF_PYTHON"),
    reason="set JIASU_TF_PYTHON to a Python with tensorflow-cpu and tf2onnx (see docs/keras.md)",
)
def test_onnx_from_tensorflow_via_tf2onnx(mnist: DatasetSplits, tmp_path: Path) -> None:
    test = mnist.test.take(500)
    np.save(tmp_path / "x.npy", test.images[:, 0].numpy())
    subprocess.run([os.environ["JIASU_TF_PYTHON"], "-c", TF_SCRIPT, str(tmp_path / "x.npy"),
                    str(tmp_path / "tf.onnx"), str(tmp_path / "ref.npy")],
                   check=True, timeout=300, capture_output=True)  # fmt: skip
    import onnxruntime

    adapted = adapt_onnx_input(tmp_path / "tf.onnx", tmp_path / "nchw.onnx")
    images, expected = test.images.numpy(), np.load(tmp_path / "ref.npy")
    session = onnxruntime.InferenceSession(str(adapted))
    (got,) = session.run(None, {session.get_inputs()[0].name: images})
    np.testing.assert_allclose(got, expected, atol=1e-4)  # the adapted file is TF's model
    source = resolve_model(str(adapted))
    config = OptimizeConfig("throughput", backends=("onnxruntime",), measure_s=0.3, warmup=1)
    result = optimize(source, images, test.labels.numpy(), images[:100], config)
    assert result.get("onnxruntime").verdict == "accepted"  # fp32: within tolerance


def test_jiasu_train_accepts_a_keras_file_and_saves_one(tmp_path: Path, mnist_dir: Path) -> None:
    source = tmp_path / "founding.keras"
    founding_model().save(source)  # type: ignore[attr-defined]
    out, saved = tmp_path / "train.json", tmp_path / "trained"
    result = subprocess.run(
        [sys.executable, "-m", "jiasu.cli.main", "train", "--model", str(source),
         "--recipe", "fast", "--epochs", "1", "--train-samples", "3000",
         "--data-dir", str(mnist_dir), "--save", str(saved), "--json", str(out), "--quiet"],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "KERAS_BACKEND": "torch", "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (saved / "model.keras").is_file()
    trained = keras.saving.load_model(saved / "model.keras", compile=False)
    images = np.zeros((2, 28, 28), dtype=np.float32)
    assert np.asarray(trained.predict(images, verbose=0)).shape == (2, 10)
    assert '"external": true' in out.read_text()
