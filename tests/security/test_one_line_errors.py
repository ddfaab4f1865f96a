"""Every foreseeable failure of the `jiasu` command is one line ``error: …`` and exit 2.

A hostile-input sweep (issue 11, section 5): JSON descriptions with fields of the wrong type,
models from a factory that do not take the input, missing optional packages, unusable paths,
bad option values. Each case runs the real CLI entry point and asserts exit status 2, exactly
one non-empty stderr line starting ``error: ``, the phrase that names the problem, and no
traceback. The hostile files are built here, under tmp_path.

Also here: a genuine bug is one ``error: internal error`` line (traceback with ``--debug``);
text printed through Rich is never read as markup (``jiasu[openvino]`` stays as written);
output that is not a terminal is never wrapped, whatever ``COLUMNS`` says.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from jiasu.cli.main import main
from jiasu.core.signature import InputSignature
from jiasu.models import ModelSpec, create_model, save_model_dir

MNIST_SIGNATURE = InputSignature.from_shape((1, 28, 28))

REPO = Path(__file__).resolve().parents[2]
FACTORIES = "jiasu_hostile_models"  # the module written below, put on sys.path
FACTORY_SOURCE = """\
from torch import nn

def cifar():  # takes (3, 32, 32) images
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))

def five_classes():  # takes MNIST, returns 5 logits
    return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 5))

def not_a_model():
    return 3

def raises():
    raise RuntimeError("the factory's own failure")
"""


@dataclass(frozen=True)
class Files:
    """What the cases need, built once: a model directory, an artifact, inputs, factories."""

    root: Path
    model_dir: Path
    artifact: Path
    inputs: Path  # (3, 1, 28, 28) float32 .npy
    no_data: Path  # an empty folder given as --data-dir: no case may get as far as data
    cifar_weights: Path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    pytest.importorskip("onnxruntime")
    from jiasu.infer.export import export_onnx

    root = tmp_path_factory.mktemp("hostile")
    torch.manual_seed(0)
    mlp = create_model("mlp").eval()
    model_dir = save_model_dir(root / "mlp", mlp, ModelSpec("mlp"))
    artifact = root / "artifact"
    artifact.mkdir()
    export_onnx(mlp, MNIST_SIGNATURE, artifact / "model.onnx")
    meta = {
        "format": "jiasu-inference", "format_version": 1,
        "candidate": {"name": "onnxruntime", "backend": "onnxruntime",
                      "settings": {"threads": 1}, "exactness": "numeric"},
        "files": {"model": "model.onnx"}, "input_shape": [1, 28, 28], "num_classes": 10,
    }  # fmt: skip
    (artifact / "artifact.json").write_text(json.dumps(meta))
    inputs = root / "inputs.npy"
    np.save(inputs, np.zeros((3, 1, 28, 28), np.float32))
    (root / "no-data").mkdir()
    (root / f"{FACTORIES}.py").write_text(FACTORY_SOURCE)
    cifar = root / "cifar.safetensors"
    save_file({"1.weight": torch.zeros(10, 3 * 32 * 32), "1.bias": torch.zeros(10)}, str(cifar))
    return Files(root, model_dir, artifact, inputs, root / "no-data", cifar)


def _edited(folder: Path, name: str, into: Path, **fields: Any) -> Path:
    """A copy of the jiasu folder `folder` whose description `name` has `fields` changed
    (the value ``...`` deletes the field)."""
    copy = shutil.copytree(folder, into / f"{folder.name}-edited")
    meta = json.loads((copy / name).read_text())
    for key, value in fields.items():
        if value is ...:
            del meta[key]
        else:
            meta[key] = value
    (copy / name).write_text(json.dumps(meta))
    return copy


def model_dir(**fields: Any) -> Callable[[Files, Path], list[str]]:
    """`jiasu optimize` on a model directory whose model.json has `fields` changed."""

    def argv(f: Files, tmp: Path) -> list[str]:
        edited = _edited(f.model_dir, "model.json", tmp, **fields)
        return ["optimize", str(edited), "--data-dir", str(f.no_data), "--quiet"]

    return argv


def artifact(**fields: Any) -> Callable[[Files, Path], list[str]]:
    """`jiasu predict` with an artifact whose artifact.json has `fields` changed."""

    def argv(f: Files, tmp: Path) -> list[str]:
        edited = _edited(f.artifact, "artifact.json", tmp, **fields)
        return ["predict", str(edited), "--input", str(f.inputs)]

    return argv


def optimize_factory(name: str, *extra: str) -> Callable[[Files, Path], list[str]]:
    def argv(f: Files, tmp: Path) -> list[str]:
        return ["optimize", f"{FACTORIES}:{name}", "--weights", str(f.cifar_weights),
                *extra, "--data-dir", str(f.no_data), "--quiet"]  # fmt: skip

    return argv


def train_factory(name: str) -> Callable[[Files, Path], list[str]]:
    def argv(f: Files, tmp: Path) -> list[str]:
        return ["train", "--model", f"{FACTORIES}:{name}", "--data-dir", str(f.no_data),
                "--quiet"]  # fmt: skip

    return argv


def fixed(*args: str) -> Callable[[Files, Path], list[str]]:
    return lambda f, tmp: list(args)


@dataclass(frozen=True)
class Case:
    argv: Callable[[Files, Path], list[str]]
    phrases: tuple[str, ...]  # each must be in the error line
    block: tuple[str, ...] = ()  # modules made unimportable, as when not installed
    requires: str | None = None  # a path the case needs on this machine


CASES: dict[str, Case] = {
    # model.json with fields of the wrong type
    "model signature a string": Case(model_dir(signature="abc"), ("'signature'", "'abc'")),
    "model signature of no inputs": Case(model_dir(signature={"inputs": []}), ("signature",)),
    "model task a word": Case(model_dir(task="ten"), ("'task'", "'ten'")),
    "model model_spec a string": Case(model_dir(model_spec="mlp"), ("'model_spec'", "object")),
    "model model_spec missing": Case(model_dir(model_spec=...), ("no 'model_spec'",)),
    # artifact.json with fields of the wrong type
    "artifact input_shape a string": Case(artifact(input_shape="abc"), ("'input_shape'",)),
    "artifact input_shape negative": Case(artifact(input_shape=[-1, 28, 28]), ("'input_shape'",)),
    "artifact input_shape missing": Case(artifact(input_shape=...), ("no 'input_shape'",)),
    "artifact candidate a string": Case(artifact(candidate="x"), ("'candidate'", "object")),
    "artifact candidate missing": Case(artifact(candidate=...), ("no 'candidate'",)),
    "artifact candidate without backend": Case(
        artifact(candidate={"name": "x"}), ("no 'candidate.backend'",)
    ),
    "artifact candidate settings a string": Case(
        artifact(candidate={"name": "x", "backend": "onnxruntime", "settings": "fast"}),
        ("'candidate.settings'",),
    ),
    "artifact files a string": Case(artifact(files="model.onnx"), ("'files'", "object")),
    "artifact is a file": Case(
        lambda f, tmp: ["predict", str(f.inputs), "--input", str(f.inputs)], ("is a file",)
    ),
    # models from a factory that do not take the input
    "optimize factory for other images": Case(
        optimize_factory("cifar"), ("input:float32[B,1,28,28]", "--input-shape")
    ),
    "optimize factory with a wrong --input-shape": Case(
        optimize_factory("cifar", "--input-shape", "3,8,8"),
        ("input:float32[B,3,8,8]", "--input-shape"),
    ),
    "optimize factory raising": Case(optimize_factory("raises"), ("raised RuntimeError",)),
    "train factory for other images": Case(
        train_factory("cifar"), ("input:float32[B,1,28,28]", "MNIST training needs")
    ),
    "train factory with 5 classes": Case(
        train_factory("five_classes"), ("returned shape (2, 5)", "(2, 10)")
    ),
    "train factory returning no model": Case(train_factory("not_a_model"), ("returned int",)),
    "train factory raising": Case(train_factory("raises"), ("raised RuntimeError",)),
    # optional packages that are not installed
    "predict --engine ray without ray": Case(
        lambda f, tmp: ["predict", str(f.artifact), "--input", str(f.inputs), "--engine", "ray"],
        ("pip install 'jiasu[ray]'",),
        block=("ray",),
    ),
    "predict --engine spark without pyspark": Case(
        lambda f, tmp: ["predict", str(f.artifact), "--input", str(f.inputs), "--engine", "spark"],
        ("pip install 'jiasu[spark]'",),
        block=("pyspark",),
    ),
    # paths the system refuses
    "a --data-dir name too long": Case(
        fixed("train", "--data-dir", "d" * 5000, "--quiet"), ("too long", "shorter path")
    ),
    "an output where even root may not write": Case(
        lambda f, tmp: [
            "predict",
            str(f.artifact),
            "--input",
            str(f.inputs),
            "--output",
            "/sys/kernel/jiasu-predictions.npy",
        ],
        ("/sys/kernel",),
        requires="/sys/kernel",
    ),
    # bad option values and usage: one line too
    "train --epochs 0": Case(fixed("train", "--epochs", "0"), ("'--epochs'", "jiasu train --help")),
    "unknown option": Case(fixed("train", "--epoch", "3"), ("--epoch", "jiasu train --help")),
    "unknown command": Case(fixed("trian"), ("trian", "jiasu --help")),
    "predict --engine not a choice": Case(
        lambda f, tmp: ["predict", str(f.artifact), "--input", str(f.inputs), "--engine", "dask"],
        ("'--engine'", "dask"),
    ),
    "optimize without MODEL": Case(fixed("optimize"), ("MODEL", "jiasu optimize --help")),
}


def _error_line(code: int, stderr: str) -> str:
    assert "Traceback" not in stderr, stderr[-3000:]
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (code, stderr)
    return lines[0]


@pytest.mark.parametrize("name", CASES)
def test_a_hostile_input_is_one_error_line_and_exit_2(
    name: str,
    files: Files,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    case = CASES[name]
    if case.requires is not None and not Path(case.requires).exists():
        pytest.skip(f"{case.requires} does not exist here")
    monkeypatch.syspath_prepend(str(files.root))
    for module in case.block:  # `import module` now fails as if it were not installed
        monkeypatch.setitem(sys.modules, module, None)
    argv = case.argv(files, tmp_path)
    capsys.readouterr()
    code = main(argv)
    line = _error_line(code, capsys.readouterr().err)
    assert all(phrase in line for phrase in case.phrases), line


@contextlib.contextmanager
def _permission_bits_bind() -> Iterator[None]:
    """Inside, file permission bits apply: root (whom they do not bind) acts as nobody."""
    if os.geteuid() != 0:
        yield
        return
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)


def test_a_folder_the_user_may_not_read_is_one_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real EACCES: --data-dir inside a folder of mode 000."""
    locked = tmp_path / "locked"
    locked.mkdir()
    argv = ["train", "--data-dir", str(locked / "mnist"), "--quiet"]
    main(argv)  # readable: "does not exist" (and every module the command needs is imported)
    capsys.readouterr()
    locked.chmod(0)
    try:
        with _permission_bits_bind():
            code = main(argv)
    finally:
        locked.chmod(0o700)
    line = _error_line(code, capsys.readouterr().err)
    assert line.startswith("error: permission denied: ") and str(locked / "mnist") in line, line
    assert "check its permissions" in line, line


def _numpy_out_of_memory(*args: object, **kwargs: object) -> None:
    np.empty(2**62, np.uint8)  # 4 EiB: MemoryError on any machine


def _torch_out_of_memory(*args: object, **kwargs: object) -> None:
    torch.empty(2**46)  # 256 TiB, past the address space: torch's allocator raises RuntimeError


@pytest.mark.parametrize("allocate", [_numpy_out_of_memory, _torch_out_of_memory])
def test_running_out_of_memory_is_one_line_naming_the_fix(
    allocate: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An allocation that fails inside a command (here: doctor's) is one line, exit 2."""
    monkeypatch.setattr("jiasu.hardware.doctor.diagnose", allocate)
    code = main(["doctor"])
    line = _error_line(code, capsys.readouterr().err)
    assert line.startswith("error: not enough memory for jiasu doctor (")
    assert "--batch-size" in line, line


def _a_bug(*args: object, **kwargs: object) -> None:
    raise KeyError("a key jiasu forgot")


def test_a_bug_is_one_internal_error_line_and_the_traceback_is_behind_debug(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An exception jiasu does not foresee is a bug: one line by default (exit 1), the
    traceback with ``jiasu --debug`` or JIASU_DEBUG=1. The library itself still raises."""
    monkeypatch.setattr("jiasu.hardware.doctor.diagnose", _a_bug)  # a bug inside doctor
    monkeypatch.delenv("JIASU_DEBUG", raising=False)
    assert main(["doctor"]) == 1
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr
    assert stderr.strip() == (
        "error: internal error: KeyError: 'a key jiasu forgot'; rerun with --debug for the "
        "traceback"
    )
    for argv, debug_env in ((["--debug", "doctor"], None), (["doctor"], "1")):
        if debug_env is not None:
            monkeypatch.setenv("JIASU_DEBUG", debug_env)
        assert main(argv) == 1
        stderr = capsys.readouterr().err
        assert "Traceback" in stderr and "_a_bug" in stderr
        assert stderr.strip().splitlines()[-1].startswith("error: internal error: KeyError")


def _report_input(tmp_path: Path, chosen: str = "onnxruntime-int8") -> Path:
    """An optimize result (tests/report/report_samples.py) whose chosen candidate is named
    `chosen`; the report's title names it."""
    sys.path.insert(0, str(REPO / "tests" / "report"))
    try:
        import report_samples
    finally:
        sys.path.remove(str(REPO / "tests" / "report"))
    result = report_samples.optimize_result()
    for candidate in result["candidates"]:
        if candidate["name"] == result["chosen"]:
            candidate["name"] = chosen
    result["chosen"] = chosen
    path = tmp_path / "optimize.json"
    path.write_text(json.dumps(result))
    return path


def test_install_hints_and_brackets_print_as_written(
    files: Files,
    mnist_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Rich read ``[openvino]`` as a style tag and printed ``pip install 'jiasu'``."""
    monkeypatch.setitem(sys.modules, "openvino", None)  # as if not installed
    code = main(
        ["optimize", str(files.model_dir), "--data-dir", str(mnist_dir), "--backends",
         "torch,openvino", "--eval-samples", "100", "--calibration-samples", "16",
         "--measure-s", "0.1", "--no-isolate", "--quiet"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "pip install 'jiasu[openvino]'" in out, out

    monkeypatch.setenv("JIASU_CACHE_DIR", str(tmp_path / "cache"))
    named = "ort[int8] [bold]as named[/bold]"  # a name in a results file, printed as written
    assert main(["report", str(_report_input(tmp_path, named))]) == 0
    assert f"chosen {named}" in capsys.readouterr().out

    from jiasu.ui.console import console

    out = console()
    with out.capture() as captured:
        out.print("install it with: pip install 'jiasu[openvino]' for [red]")
    assert "pip install 'jiasu[openvino]' for [red]" in captured.get()


@pytest.mark.parametrize("columns", [None, "20", "40", "300"])
def test_messages_are_not_wrapped_when_output_is_not_a_terminal(
    columns: str | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Piped output (here: captured) keeps each message and sentence on one line."""
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    monkeypatch.setenv("JIASU_CACHE_DIR", str(tmp_path / "cache"))  # no measured peak there
    deep = tmp_path.joinpath(*(["a-rather-long-folder-name"] * 4))
    deep.mkdir(parents=True)
    out = deep / "combined-report-with-a-long-name.json"
    assert main(["report", str(_report_input(tmp_path)), "--json", str(out)]) == 0
    captured = capsys.readouterr()
    assert f"wrote {out}\n" in captured.err  # the whole path on the message's line
    no_peak = "distance to the limit: no measured peak; run `jiasu doctor --measure` once"
    assert no_peak in captured.out
    assert "3.08× faster" in captured.out  # a table cell is not squeezed below its width
