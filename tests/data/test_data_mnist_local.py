"""MNIST from local folders: real data, source resolution order, and broken folders."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from jiasu.core.errors import DataError
from jiasu.data import DatasetSplits, MnistUnavailableError, load_for_demo, load_mnist
from jiasu.data.mnist import FILES

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def test_real_mnist(real_splits: DatasetSplits, shared_mnist: Path) -> None:
    assert not real_splits.is_fallback and str(shared_mnist) in real_splits.source
    train, test = real_splits.train, real_splits.test
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    assert train.images.dtype == torch.float32 and train.labels.dtype == torch.int64
    assert train.labels.shape == (60000,) and test.labels.shape == (10000,)
    assert float(train.images.min()) == 0.0 and float(train.images.max()) == 1.0
    assert torch.bincount(train.labels, minlength=10).tolist() == TRAIN_COUNTS
    assert set(test.labels.unique().tolist()) == set(range(10))


def test_cache_of_real_files_passes_checksums(
    isolated_env: Path, link_mnist: Callable[[Path], Path]
) -> None:
    link_mnist(isolated_env)
    splits = load_mnist(download=False)
    assert f"cache {isolated_env}" in splits.source
    assert len(splits.train) == 60000 and len(splits.test) == 10000


def test_resolution_order(
    tmp_path: Path,
    isolated_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    make_fake_mnist: Callable[..., Path],
    link_mnist: Callable[[Path], Path],
) -> None:
    arg_dir = make_fake_mnist(tmp_path / "arg", n_train=3)
    env_dir = make_fake_mnist(tmp_path / "env", n_train=5, gz=False)
    link_mnist(isolated_env)
    monkeypatch.setenv("JIASU_DATA_DIR", str(env_dir))
    from_arg = load_mnist(arg_dir)
    assert len(from_arg.train) == 3 and str(arg_dir) in from_arg.source
    from_env = load_mnist()
    assert len(from_env.train) == 5 and str(env_dir) in from_env.source
    monkeypatch.delenv("JIASU_DATA_DIR")
    assert len(load_mnist(download=False).train) == 60000


def test_cache_dir_argument_beats_env(
    tmp_path: Path, isolated_env: Path, link_mnist: Callable[[Path], Path]
) -> None:
    link_mnist(tmp_path / "mine")
    splits = load_mnist(cache_dir=tmp_path / "mine", download=False)
    assert str(tmp_path / "mine") in splits.source
    assert not isolated_env.exists()


def test_explicit_folder_missing_files_is_an_error(
    tmp_path: Path,
    isolated_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    make_fake_mnist: Callable[..., Path],
    link_mnist: Callable[[Path], Path],
) -> None:
    link_mnist(isolated_env)  # a complete cache must not be used as a silent fallback
    folder = make_fake_mnist(tmp_path / "partial")
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="lacks t10k-labels-idx1-ubyte") as info:
        load_mnist(folder)
    assert str(folder) in str(info.value) and "train-images" not in str(info.value)
    monkeypatch.setenv("JIASU_DATA_DIR", str(tmp_path / "absent"))
    with pytest.raises(DataError, match="does not exist") as info:
        load_mnist()
    assert str(tmp_path / "absent") in str(info.value) and "JIASU_DATA_DIR" in str(info.value)
    assert not isinstance(info.value, MnistUnavailableError)


def test_label_out_of_range(tmp_path: Path, make_fake_mnist: Callable[..., Path]) -> None:
    labels = np.array([1, 2, 10, 3, 255, 0], dtype=np.uint8)
    folder = make_fake_mnist(tmp_path / "d", train_labels=labels)
    with pytest.raises(DataError, match="has label 10 at index 2") as info:
        load_mnist(folder)
    assert str(folder / "train-labels-idx1-ubyte.gz") in str(info.value)


def test_count_mismatch(tmp_path: Path, make_fake_mnist: Callable[..., Path]) -> None:
    folder = make_fake_mnist(tmp_path / "d", n_train=6, train_labels=np.zeros(7, np.uint8))
    with pytest.raises(DataError, match=r"6 images but .* 7 labels") as info:
        load_mnist(folder)
    assert str(folder / "train-images-idx3-ubyte.gz") in str(info.value)


def test_wrong_image_shape(tmp_path: Path, make_fake_mnist: Callable[..., Path]) -> None:
    images = np.zeros((6, 32, 32), dtype=np.uint8)
    folder = make_fake_mnist(tmp_path / "d", train_images=images)
    with pytest.raises(DataError, match=r"not \(N, 28, 28\)") as info:
        load_mnist(folder)
    assert str(folder / "train-images-idx3-ubyte.gz") in str(info.value)


def test_explicit_folder_skips_checksum_but_cache_does_not(
    tmp_path: Path, isolated_env: Path, make_fake_mnist: Callable[..., Path]
) -> None:
    folder = make_fake_mnist(tmp_path / "fashion", gz=False)
    splits = load_mnist(folder)  # MNIST-format, not MNIST: accepted
    assert len(splits.test) == 4 and float(splits.train.images.max()) <= 1.0
    make_fake_mnist(isolated_env)
    with pytest.raises(DataError, match="fails its checksum") as info:
        load_mnist()
    assert str(isolated_env / "train-images-idx3-ubyte.gz") in str(info.value)
    assert FILES["train-images-idx3-ubyte"] in str(info.value)


def test_no_download_and_empty_cache_is_unavailable(isolated_env: Path) -> None:
    with pytest.raises(MnistUnavailableError, match="downloading is disabled") as info:
        load_mnist(download=False)
    for hint in ("--data-dir", "JIASU_DATA_DIR", str(isolated_env)):
        assert hint in str(info.value)


def test_demo_falls_back_to_digits(isolated_env: Path) -> None:
    splits = load_for_demo()  # cache empty, the only mirror is a closed port
    assert splits.is_fallback and "fallback" in splits.source
    assert "--data-dir" in splits.notice and str(isolated_env) in splits.notice
    assert splits.train.images.shape[1:] == (1, 28, 28)
    with pytest.raises(MnistUnavailableError):
        load_for_demo(allow_fallback=False)


def test_demo_uses_mnist_when_present(tmp_path: Path, make_fake_mnist: Callable[..., Path]) -> None:
    splits = load_for_demo(make_fake_mnist(tmp_path / "d"))
    assert not splits.is_fallback and splits.notice == "" and len(splits.train) == 6
