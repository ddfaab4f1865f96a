"""Unbounded values: each is checked at the boundary against its stated range, and a run
that goes non-finite, or resumes from a damaged checkpoint, stops with one sentence."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from jiasu.cli.main import main
from jiasu.core.errors import CheckpointError, ConfigError, JiasuError
from jiasu.core.recipe import Recipe
from jiasu.data import write_idx
from jiasu.models import create_model
from jiasu.train import ModelCheckpoint, fit


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The one non-empty stderr line a refused command printed (no traceback)."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("Usage:")]
    lines = [line for line in lines if not line.startswith("Try ")]  # click's usage hint
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def tiny_mnist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MNIST-format folder of random digits: 128 training and 32 test images."""
    folder = tmp_path_factory.mktemp("tiny-mnist")
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 128), ("t10k", 32)):
        write_idx(
            folder / f"{prefix}-images-idx3-ubyte.gz",
            rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
        )
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n, dtype=np.uint8))
    return folder


def _data(n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return torch.rand(n, 1, 28, 28, generator=generator), torch.randint(
        0, 10, (n,), generator=generator
    )


# --- command-line values ----------------------------------------------------------------
@pytest.mark.parametrize(
    "command, option, value, needle",
    [
        ("train", "--seed", "100000000000000000000000", "0<=x<=4294967295"),
        ("train", "--seed", "-1", "0<=x<=4294967295"),
        ("demo", "--seed", "100000000000000000000000", "0<=x<=4294967295"),
        ("train", "--lr", "inf", "inf is not a finite number above 0"),
        ("train", "--lr", "nan", "nan is not a finite number above 0"),
    ],
)
def test_train_option_out_of_range_is_refused_before_any_work(
    command: str,
    option: str,
    value: str,
    needle: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    missing = tmp_path / "no-data-here"  # reached only if the value was accepted
    code = main([command, "--model", "mlp", option, value, "--data-dir", str(missing)])
    assert code == 2
    line = _error_line(capsys)
    assert option in line and needle in line, line


@pytest.mark.parametrize(
    "option, value, needle",
    [
        ("--threads", "100000", "100000 is not in the range 1<=x<="),  # 100000 crashes torch
        ("--batch-size", "1000000000", "1000000000 is not in the range 1<=x<=65536"),  # 3 TB
        ("--measure-s", "inf", "inf is not in the range 0.1<=x<=3600"),  # would never end
    ],
)
def test_optimize_option_beyond_its_cap_is_refused(
    option: str, value: str, needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["optimize", "mlp", option, value])
    assert code == 2
    line = _error_line(capsys)
    assert option in line and needle in line, line


# --- recipe values ----------------------------------------------------------------------
# each of these was accepted before and failed mid-run (or crashed torch)
TECHNIQUE_VALUES = [
    ("threads", {"num_threads": 100_000}, "num_threads 100000 is out of range"),
    ("accumulate", {"k": 10**20}, "k must be an integer from 1 to 1024"),
    ("clip_norm", {"max_norm": math.inf}, "max_norm must be a number in (0, 1e+06]"),
    ("lookahead", {"every": 10**12}, "every must be an integer from 1 to 100000"),
    ("large_batch", {"batch_size": 10**12}, "batch_size must be an integer from 1 to 1048576"),
    ("lr_warmup", {"epochs": math.inf}, "epochs must be a number in (0, 1000]"),
    ("one_cycle", {"max_lr_factor": math.inf}, "max_lr_factor must be a number in (0, 1000]"),
    ("one_cycle", {"div": 1e300}, "div must be a number in (0, 1e+06]"),
    ("one_cycle", {"pct_start": "0.3"}, "pct_start must be a number in (0, 1)"),
]


@pytest.mark.parametrize(
    "name, params, needle",
    TECHNIQUE_VALUES,
    ids=[f"{n}-{next(iter(p))}" for n, p, _ in TECHNIQUE_VALUES],
)
def test_recipe_value_out_of_range_is_refused_when_the_recipe_loads(
    tmp_path: Path, name: str, params: dict[str, object], needle: str
) -> None:
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps({"name": "r", "techniques": [{"name": name, **params}]}))
    with pytest.raises(ConfigError) as info:
        Recipe.load(path)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_grad_fn_that_cannot_take_gradients_is_refused_at_load(tmp_path: Path) -> None:
    recipe = {"name": "r", "techniques": [{"name": "grad_fn", "fn": "os:abort"}]}
    with pytest.raises(ConfigError, match=r"'os:abort' cannot be called as fn\(grads\)"):
        Recipe.from_dict(recipe)


def test_grad_fn_module_failing_on_import_is_one_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "broken_grads.py").write_text("raise RuntimeError('not configured')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    recipe = {"name": "r", "techniques": [{"name": "grad_fn", "fn": "broken_grads:clip"}]}
    message = r"cannot import technique 'grad_fn': 'broken_grads:clip' .RuntimeError: not"
    with pytest.raises(ConfigError, match=message):
        Recipe.from_dict(recipe)


def test_fit_refuses_seed_and_lr_out_of_range() -> None:
    with pytest.raises(ConfigError, match=r"seed must be a whole number from 0 to 2\*\*32 - 1"):
        fit(create_model("mlp"), _data(), epochs=1, seed=2**70, quiet=True)
    with pytest.raises(ConfigError, match="learning rate must be a positive finite number"):
        fit(create_model("mlp"), _data(), epochs=1, lr=math.inf, quiet=True)


# --- non-finite results -----------------------------------------------------------------
def test_training_that_diverges_exits_non_zero_with_one_sentence(
    tiny_mnist: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["train", "--model", "mlp", "--lr", "1e30", "--epochs", "2", "--quiet"]
    code = main([*args, "--data-dir", str(tiny_mnist)])
    assert code == 2
    line = _error_line(capsys)
    assert line.startswith("error: training diverged in epoch 1:"), line
    assert "NaN or infinity" in line and "lower the learning rate (it was 1e+30)" in line


def test_fit_raises_when_training_diverges() -> None:
    torch.manual_seed(0)
    with pytest.raises(JiasuError, match="training diverged in epoch 1"):
        fit(create_model("mlp"), _data(), epochs=1, lr=1e30, optimizer="sgd", quiet=True)


# --- resume from a damaged checkpoint ----------------------------------------------------
@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    """A real checkpoint folder after one epoch of the mlp with Adam."""
    torch.manual_seed(0)
    fit(
        create_model("mlp"),
        _data(),
        epochs=1,
        quiet=True,
        callbacks=[ModelCheckpoint(tmp_path / "ck")],
    )
    return tmp_path / "ck" / "epoch-0001"


def _edit_training_state(folder: Path, change: dict[str, torch.Tensor | None]) -> None:
    state = load_file(str(folder / "training.safetensors"))
    for key, value in change.items():
        if value is None:
            del state[key]
        else:
            state[key] = value
    save_file(state, str(folder / "training.safetensors"))


def _edit_meta(folder: Path, **changes: object) -> None:
    meta = json.loads((folder / "checkpoint.json").read_text())
    meta.update(changes)
    (folder / "checkpoint.json").write_text(json.dumps(meta))


def _resume(folder: Path) -> CheckpointError:
    torch.manual_seed(1)
    with pytest.raises(CheckpointError) as info:
        fit(create_model("mlp"), _data(), epochs=2, resume_from=folder, quiet=True)
    assert "\n" not in str(info.value) and str(folder) in str(info.value)
    return info.value


def test_resume_refuses_optimizer_state_of_the_wrong_shape(checkpoint: Path) -> None:
    # a broadcastable (1,) moment: torch would accept it and train on garbage
    _edit_training_state(checkpoint, {"optimizer.0.exp_avg": torch.zeros(1)})
    assert "optimizer state 'exp_avg' of parameter 0" in str(_resume(checkpoint))
    _edit_training_state(checkpoint, {"optimizer.0.exp_avg": torch.zeros(4, 4)})
    assert "has shape (4, 4) but the parameter has (128, 784)" in str(_resume(checkpoint))


def test_resume_refuses_non_finite_optimizer_state(checkpoint: Path) -> None:
    _edit_training_state(checkpoint, {"optimizer.1.exp_avg_sq": torch.full((128,), math.nan)})
    assert "hold NaN or infinity" in str(_resume(checkpoint))


@pytest.mark.parametrize(
    "change, needle",
    [
        ({"rng.torch": None}, "random-number state 'rng.torch' is missing"),
        ({"rng.shuffle": None}, "random-number state 'rng.shuffle' is missing"),
        ({"rng.torch": torch.zeros(10)}, "'rng.torch' is torch.float32 of shape (10,)"),
    ],
)
def test_resume_refuses_missing_or_mistyped_rng_state(
    checkpoint: Path, change: dict[str, torch.Tensor | None], needle: str
) -> None:
    _edit_training_state(checkpoint, change)
    assert needle in str(_resume(checkpoint))


@pytest.mark.parametrize(
    "changes, needle",
    [
        ({"epoch": "three"}, "its epoch is 'three'"),
        ({"epoch": 1.5}, "its epoch is 1.5"),
        ({"history": [1, 2]}, "history is not an object"),
        ({"history": {"epochs": [{"epoch": 1}]}}, "record 1 of its history"),
        ({"callbacks": [{"type": "ModelCheckpoint", "state": 3}]}, "callback states"),
    ],
)
def test_resume_refuses_mistyped_epoch_history_or_callbacks(
    checkpoint: Path, changes: dict[str, object], needle: str
) -> None:
    _edit_meta(checkpoint, **changes)
    assert needle in str(_resume(checkpoint))


def test_resume_from_a_sound_checkpoint_still_works(checkpoint: Path) -> None:
    torch.manual_seed(1)
    history = fit(create_model("mlp"), _data(), epochs=2, resume_from=checkpoint, quiet=True)
    assert [r.epoch for r in history.epochs] == [1, 2]


# --- report schema ----------------------------------------------------------------------
def test_report_refuses_an_unknown_schema_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sample = Path(__file__).parents[1] / "report" / "data" / "demo_mnist_quick.json"
    data = json.loads(sample.read_text())
    data["schema_version"] = 99
    path = tmp_path / "future.json"
    path.write_text(json.dumps(data))
    assert main(["report", str(path)]) == 2
    line = _error_line(capsys)
    assert str(path) in line and "schema_version 99" in line and "reads schema_version 1, 2" in line
