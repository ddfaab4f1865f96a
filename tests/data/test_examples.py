"""Examples, StreamingExamples and TrainingData: the one data type training consumes."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from jiasu.core.errors import ConfigError, DataError
from jiasu.data.dataset import DatasetSplits, ImageDataset
from jiasu.data.examples import Examples, StreamingExamples, TrainingData, as_targets
from jiasu.data.mnist import MNIST_TASK


def test_from_arrays_one_array_gives_float_input_and_int64_class_ids() -> None:
    x = np.arange(12, dtype=np.float64).reshape(4, 3)
    ex = Examples.from_arrays(x, np.array([0, 1, 1, 0], dtype=np.int32))
    assert ex.signature.describe() == "input:float32[B,3]"
    assert ex.inputs[0].dtype == torch.float32
    assert torch.equal(ex.inputs[0], torch.tensor(x, dtype=torch.float32))
    assert ex.targets.dtype == torch.int64 and ex.targets.tolist() == [0, 1, 1, 0]
    assert len(ex) == 4


def test_from_arrays_dict_keeps_names_dtypes_and_keyword_call() -> None:
    ids = torch.randint(0, 100, (5, 7))
    mask = torch.ones(5, 7, dtype=torch.int64)
    ex = Examples.from_arrays({"input_ids": ids, "attention_mask": mask}, [0.5] * 5)
    assert ex.signature.describe() == "input_ids:int64[B,7], attention_mask:int64[B,7]"
    assert ex.signature.call == "keyword"
    assert ex.inputs[0] is not None and torch.equal(ex.inputs[0], ids)
    assert ex.targets.dtype == torch.float32 and ex.targets.shape == (5,)


def test_from_arrays_tuple_with_names_and_uint8_pixels() -> None:
    pixels = np.full((2, 1, 2, 2), 255, dtype=np.uint8)
    extra = np.zeros((2, 4), dtype=np.float32)
    ex = Examples.from_arrays((pixels, extra), np.zeros((2, 3)), names=["image", "meta"])
    assert ex.signature.describe() == "image:float32[B,1,2,2], meta:float32[B,4]"
    assert ex.signature.call == "positional"
    assert float(ex.inputs[0].max()) == 1.0
    assert ex.targets.shape == (2, 3) and ex.targets.dtype == torch.float32


def test_take_and_to_keep_the_signature() -> None:
    ex = Examples.from_arrays(np.arange(10, dtype=np.float32)[:, None], np.arange(10) % 2)
    part = ex.take(torch.tensor([3, 1]))
    assert part.signature == ex.signature
    assert part.inputs[0][:, 0].tolist() == [3.0, 1.0] and part.targets.tolist() == [1, 1]
    assert ex.take(slice(0, 4)).targets.tolist() == [0, 1, 0, 1]
    assert ex.to("cpu") is ex
    assert ex.to("meta").inputs[0].device.type == "meta"


def test_mismatched_rows_are_one_sentence() -> None:
    with pytest.raises(DataError, match="different numbers of samples"):
        Examples.from_arrays({"a": np.zeros((3, 2)), "b": np.zeros((4, 2))}, np.zeros(3))
    with pytest.raises(DataError, match="targets 2"):
        Examples.from_arrays(np.zeros((3, 2)), np.zeros(2))


def test_bad_targets_and_names() -> None:
    with pytest.raises(DataError, match="NaN"):
        as_targets(np.array([1.0, np.nan]))
    with pytest.raises(DataError, match="one per sample"):
        as_targets(np.zeros((2, 2), dtype=np.int64))
    with pytest.raises(DataError, match="numbers"):
        as_targets(np.array(["a", "b"]))
    with pytest.raises(ConfigError, match="name each input once"):
        Examples.from_arrays((np.zeros((2, 1)), np.zeros((2, 1))), [0, 1], names=["a"])


def _square(path: str) -> tuple[torch.Tensor, ...]:
    value = float(path)
    return (torch.tensor([value, value * value]),)


def test_streaming_examples_pickle_take_and_load() -> None:
    ex = Examples.from_arrays(np.zeros((1, 2), np.float32), [0])
    stream = StreamingExamples(["1", "2", "3"], torch.tensor([0, 1, 0]), ex.signature, _square)
    copy = pickle.loads(pickle.dumps(stream))
    inputs, target = copy[1]
    assert inputs[0].tolist() == [2.0, 4.0] and int(target) == 1
    part = stream.take([2, 0])
    assert len(part) == 2 and part.targets.tolist() == [0, 0]
    loaded = part.load()
    assert loaded.inputs[0].tolist() == [[3.0, 9.0], [1.0, 1.0]]
    assert stream.take(slice(1, None)).sources == ("2", "3")


def test_training_data_from_mnist_splits() -> None:
    train = ImageDataset(torch.rand(6, 1, 28, 28), torch.arange(6) % 10, "train")
    test = ImageDataset(torch.rand(2, 1, 28, 28), torch.tensor([3, 4]), "test")
    data = TrainingData.from_splits(DatasetSplits(train, test, "MNIST (test)"))
    assert data.task == MNIST_TASK and data.classes == tuple("0123456789")
    assert data.val is None and data.test is not None and len(data.test) == 2
    assert data.signature.describe() == "input:float32[B,1,28,28]"
    assert torch.equal(data.train.inputs[0], train.images)  # type: ignore[union-attr]
    assert data.source == "MNIST (test)"


def test_training_data_refuses_mismatched_splits() -> None:
    a = Examples.from_arrays(np.zeros((2, 3), np.float32), [0, 1])
    b = Examples.from_arrays(np.zeros((2, 4), np.float32), [0, 1])
    with pytest.raises(DataError, match="differ from the training inputs"):
        TrainingData(a, b, None, MNIST_TASK, None, "t")
