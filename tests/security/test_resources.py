"""Resource bombs: small hostile files that declare or expand to gigabytes are refused at once.

Each case measures the growth of the process's peak resident memory while the file is
read (Linux: the peak is reset through /proc/self/clear_refs, then read from VmHWM), so
a reader that allocates what a file claims is caught even when it then fails with the
right error.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from jiasu.cli.main import main
from jiasu.core.errors import JiasuError
from jiasu.models import ModelSpec, load_model_dir, save_model_dir

MB = 1 << 20


def _status_mb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024  # kB
    raise KeyError(key)


@contextlib.contextmanager
def _peak_growth() -> Iterator[Callable[[], float]]:
    """Yields a function giving how many MB the peak resident memory rose above the
    memory in use when the block began (the peak is reset at its start)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    except OSError:
        pytest.skip("needs Linux's /proc/self/clear_refs to measure peak memory")
    start = _status_mb("VmRSS")
    end: list[float] = []
    try:
        yield lambda: end[0] - start
    finally:
        end.append(_status_mb("VmHWM"))


def _refused(action: Callable[[], object], limit_mb: float) -> JiasuError:
    """Run `action`; it must raise a JiasuError of one line without growing the peak
    memory by `limit_mb` or more. Returns the error."""
    with _peak_growth() as growth, pytest.raises(JiasuError) as info:
        action()
    message = str(info.value)
    assert "\n" not in message, message
    assert growth() < limit_mb, f"peak memory grew by {growth():.0f} MB: {message}"
    return info.value


def _idx_header(*dims: int) -> bytes:
    return struct.pack(f">BBBB{len(dims)}I", 0, 0, 0x08, len(dims), *dims)


def _gzip_bomb(path: Path, header: bytes, expanded_mb: int) -> Path:
    """A gzip file of `header` then zeros, `expanded_mb` MiB in all, about 1/1000 of that
    on disk: gzip members of 16 MiB of zeros, compressed once and repeated."""
    zeros = gzip.compress(bytes(16 * MB), compresslevel=9, mtime=0)
    with open(path, "wb") as out:
        out.write(gzip.compress(header, mtime=0))
        for _ in range(expanded_mb // 16):
            out.write(zeros)
    return path


def _mnist_folder(folder: Path, images: Path) -> Path:
    """An MNIST folder whose training images are `images`; the other files are tiny."""
    folder.mkdir()
    images.rename(folder / "train-images-idx3-ubyte.gz")
    small = {
        "train-labels-idx1-ubyte.gz": _idx_header(2) + bytes(2),
        "t10k-images-idx3-ubyte.gz": _idx_header(2, 28, 28) + bytes(2 * 784),
        "t10k-labels-idx1-ubyte.gz": _idx_header(2) + bytes(2),
    }
    for name, content in small.items():
        (folder / name).write_bytes(gzip.compress(content, mtime=0))
    return folder


def test_gzip_bomb_in_data_dir_is_refused_without_expanding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 1 GiB of zeros in ~1 MB: the header claims MNIST's 60000 images, the rest is padding
    bomb = _gzip_bomb(tmp_path / "bomb.gz", _idx_header(60000, 28, 28), expanded_mb=1024)
    assert bomb.stat().st_size < 2 * MB
    folder = _mnist_folder(tmp_path / "mnist", bomb)
    args = ["train", "--model", "mlp", "--epochs", "1", "--quiet", "--data-dir", str(folder)]
    with _peak_growth() as growth:
        code = main(args)
    assert code == 2
    error = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(error) == 1 and error[0].startswith("error: "), error
    assert "train-images-idx3-ubyte.gz" in error[0]
    assert "extra bytes after the 47040000 bytes" in error[0]
    assert growth() < 100, f"peak memory grew by {growth():.0f} MB"  # the 47 MB payload only


@pytest.mark.parametrize("compressed", [True, False])
def test_idx_header_claiming_a_trillion_values_is_refused_before_reading(
    tmp_path: Path, compressed: bool
) -> None:
    from jiasu.data.idx import read_idx

    # (10^6, 10^6): 10^12 bytes declared; then 256 MiB of zeros (gzip) or 1 MiB (raw)
    header = _idx_header(1_000_000, 1_000_000)
    if compressed:
        path = _gzip_bomb(tmp_path / "images.gz", header, expanded_mb=256)
    else:
        path = tmp_path / "images.idx"
        path.write_bytes(header + bytes(MB))
    error = _refused(lambda: read_idx(path), limit_mb=20)
    assert str(path) in str(error) and "1000000000000 bytes" in str(error)


def test_npy_header_claiming_a_trillion_rows_is_refused_before_allocating(tmp_path: Path) -> None:
    from jiasu.data.inputs import read_inputs

    path = tmp_path / "inputs.npy"
    with open(path, "wb") as out:  # a true .npy header that lies about the rows, 12 KB of data
        header = {"descr": "<f4", "fortran_order": False, "shape": (10**12, 28, 28)}
        np.lib.format.write_array_header_1_0(out, header)
        out.write(bytes(4 * 28 * 28 * 4))
    error = _refused(lambda: read_inputs(path, None), limit_mb=20)
    assert str(path) in str(error) and "(1000000000000, 28, 28)" in str(error)


def test_npy_pickle_and_object_arrays_are_refused(tmp_path: Path) -> None:
    from jiasu.data.inputs import read_inputs

    path = tmp_path / "objects.npy"
    np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    error = _refused(lambda: read_inputs(path, None), limit_mb=20)
    assert "objects.npy" in str(error)


def _model_dir_asking_for(tmp_path: Path, kwargs: dict[str, object]) -> Path:
    """A real model directory (default mlp) whose model.json then asks for `kwargs`."""
    spec = ModelSpec("mlp")
    folder = save_model_dir(tmp_path / "model", spec.build(), spec)
    meta_path = folder / "model.json"
    meta = json.loads(meta_path.read_text())
    meta["model_spec"]["kwargs"] = kwargs
    meta_path.write_text(json.dumps(meta))
    return folder


def test_model_json_kwargs_asking_for_a_huge_model_is_refused(tmp_path: Path) -> None:
    folder = _model_dir_asking_for(tmp_path, {"hidden": 10**9})  # 3 TB of weights
    error = _refused(lambda: load_model_dir(folder), limit_mb=20)
    assert "hidden" in str(error) and "at most 16384" in str(error)


def test_model_is_not_built_bigger_than_its_weights_file(tmp_path: Path) -> None:
    # in range, but 117 MB of parameters against a weights file of 0.4 MB
    folder = _model_dir_asking_for(tmp_path, {"hidden": 16384, "num_classes": 1000})
    error = _refused(lambda: load_model_dir(folder), limit_mb=40)
    assert "model.safetensors" in str(error) and "(16384, 784)" in str(error)


@pytest.mark.parametrize(
    "model_spec, needle",
    [
        ({"name": "mlp", "kwargs": {"dropout": "x"}}, "dropout must be in [0, 1)"),
        ({"name": "mlp", "kwargs": "hidden=64"}, "'kwargs' must be an object"),
        ({"name": "mlp", "kwargs": [["hidden", 64]]}, "'kwargs' must be an object"),
        (["mlp"], "must be an object"),
    ],
)
def test_model_json_spec_of_the_wrong_type_is_one_sentence(
    tmp_path: Path, model_spec: object, needle: str
) -> None:
    folder = _model_dir_asking_for(tmp_path, {})
    meta = json.loads((folder / "model.json").read_text())
    meta["model_spec"] = model_spec
    (folder / "model.json").write_text(json.dumps(meta))
    assert needle in str(_refused(lambda: load_model_dir(folder), limit_mb=20))


def test_weights_and_spec_agree_for_every_registry_model(tmp_path: Path) -> None:
    # the shape check before building must accept what jiasu itself saves
    from jiasu.models import MODELS

    for name in MODELS.names():
        spec = ModelSpec(name, {"num_classes": 3})
        torch.manual_seed(0)
        model = spec.build().eval()
        folder = save_model_dir(tmp_path / name, model, spec)
        loaded = load_model_dir(folder).model.state_dict()
        for key, value in model.state_dict().items():
            torch.testing.assert_close(loaded[key], value, rtol=0, atol=0)
