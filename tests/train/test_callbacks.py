from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from jiasu.core.errors import CheckpointError, ConfigError
from jiasu.data import ImageDataset
from jiasu.models import ModelSpec, create_model
from jiasu.train import EarlyStopping, ModelCheckpoint, ReduceLROnPlateau, fit
from jiasu.train.callbacks import RunState
from jiasu.train.checkpoint import read_checkpoint
from jiasu.train.history import EpochRecord, History
from jiasu.train.recipes import baseline, fast


def _model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model("mlp")


def _record(epoch: int, val_loss: float) -> EpochRecord:
    return EpochRecord(epoch, 1.0, 0.5, val_loss, 0.5, 0.1, 1.0, 0.1, 100.0)


def _run(lr: float = 0.1) -> RunState:
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    return RunState(model, optimizer, History(), True, lambda d, k: None)


def test_reduce_lr_on_plateau_follows_keras_rules() -> None:
    run = _run(lr=0.1)
    callback = ReduceLROnPlateau(factor=0.1, patience=2, cooldown=1, min_lr=1e-4)
    callback.on_train_begin(run)
    lrs = []
    # Keras: improve, improve, wait 1, wait 2 → reduce; the cooldown epoch resets the count
    # and still counts as waiting 1 once the cooldown has run out; then every 2 epochs.
    losses = [1.0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]
    for epoch, loss in enumerate(losses, start=1):
        callback.on_epoch_end(run, _record(epoch, loss))
        lrs.append(run.optimizer.param_groups[0]["lr"])
    expected = [0.1, 0.1, 0.1, 0.01, 0.01, 0.001, 0.001, 1e-4, 1e-4, 1e-4, 1e-4]
    assert lrs == pytest.approx(expected)


def test_reduce_lr_needs_improvement_larger_than_min_delta() -> None:
    run = _run(lr=1.0)
    callback = ReduceLROnPlateau(factor=0.5, patience=1, min_delta=0.1)
    for epoch, loss in enumerate([1.0, 0.95, 0.7], start=1):
        callback.on_epoch_end(run, _record(epoch, loss))
    # 0.95 is not 0.1 better than 1.0 → reduce; 0.7 is → keep
    assert run.optimizer.param_groups[0]["lr"] == pytest.approx(0.5)


def test_reduce_lr_on_plateau_in_a_real_run(small_train: ImageDataset) -> None:
    # min_delta so large that only the first epoch counts as an improvement
    callback = ReduceLROnPlateau("train_loss", factor=0.1, patience=1, min_delta=10.0)
    history = fit(_model(), small_train.take(1000), epochs=3, callbacks=[callback], quiet=True)
    assert [r.lr for r in history.epochs] == pytest.approx([1e-3, 1e-3, 1e-4])


def test_monitoring_validation_without_validation_data_is_a_clear_error(
    small_train: ImageDataset,
) -> None:
    with pytest.raises(ConfigError, match="monitors 'val_loss' but there is no validation data"):
        fit(_model(), small_train.take(100), callbacks=[ReduceLROnPlateau()], quiet=True)
    with pytest.raises(ConfigError, match="monitor must be one of"):
        ReduceLROnPlateau("accuracy")  # neither train_ nor val_
    # a name the run does not record is refused before the first epoch, listing what it does
    with pytest.raises(ConfigError, match=r"monitor must be one of .*val_accuracy.*got 'val_acc'"):
        fit(_model(), small_train.take(100), validation_split=0.2, quiet=True,
            callbacks=[ReduceLROnPlateau("val_acc")])  # fmt: skip


def test_early_stopping_stops_and_restores_the_best_weights(small_train: ImageDataset) -> None:
    stopper = EarlyStopping("train_loss", patience=0, min_delta=10.0, restore_best_weights=True)
    model = _model()
    history = fit(model, small_train.take(500), epochs=5, callbacks=[stopper], quiet=True)
    assert len(history.epochs) == 2 and history.stopped_early
    assert stopper.best_epoch == 1


@pytest.mark.parametrize("recipe", [baseline(), fast()], ids=["dataloader", "device_data"])
def test_resume_from_checkpoint_continues_exactly(
    tmp_path: Path, small_train: ImageDataset, recipe: object
) -> None:
    data = small_train.take(2000)
    kwargs = dict(validation_split=0.2, recipe=recipe, quiet=True, seed=3)

    straight = _model()
    reference = fit(straight, data, epochs=3, callbacks=[ReduceLROnPlateau(patience=1)], **kwargs)

    first = _model()
    fit(
        first,
        data,
        epochs=2,
        callbacks=[ReduceLROnPlateau(patience=1), ModelCheckpoint(tmp_path)],
        **kwargs,
    )
    resumed = _model(seed=99)  # different initial weights: everything must come from the checkpoint
    history = fit(
        resumed,
        data,
        epochs=3,
        callbacks=[ReduceLROnPlateau(patience=1)],
        resume_from=tmp_path,
        **kwargs,
    )
    assert [r.epoch for r in history.epochs] == [1, 2, 3]
    assert [r.train_loss for r in history.epochs] == [r.train_loss for r in reference.epochs]
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_checkpoint_folder_layout_and_pruning(tmp_path: Path, small_train: ImageDataset) -> None:
    spec = ModelSpec("mlp")
    fit(
        _model(), small_train.take(300), epochs=3, quiet=True,
        callbacks=[ModelCheckpoint(tmp_path, keep=2)], model_spec=spec, recipe=fast(),
    )  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch-0002", "epoch-0003", "latest.json"]
    assert json.loads((tmp_path / "latest.json").read_text()) == {
        "checkpoint": "epoch-0003",
        "epoch": 3,
    }
    files = sorted(p.name for p in (tmp_path / "epoch-0003").iterdir())
    written = ["checkpoint.json", "model.safetensors", "training.safetensors"]
    assert files == [".jiasu-manifest.json", *written]  # the manifest lists what jiasu wrote
    manifest = json.loads((tmp_path / "epoch-0003" / ".jiasu-manifest.json").read_text())
    assert manifest["files"] == written
    checkpoint = read_checkpoint(tmp_path)
    assert checkpoint.epoch == 3
    assert checkpoint.meta["model_spec"] == {"name": "mlp", "kwargs": {}}
    assert checkpoint.meta["recipe"]["name"] == "fast"
    rebuilt = ModelSpec.from_dict(checkpoint.meta["model_spec"]).build()
    rebuilt.load_state_dict(checkpoint.model_state)


def test_save_best_only_writes_only_improving_epochs(
    tmp_path: Path, small_train: ImageDataset
) -> None:
    callback = ModelCheckpoint(tmp_path, monitor="train_loss", save_best_only=True, keep=5)
    # lr so large the loss does not keep improving is fragile; instead check the bookkeeping:
    fit(_model(), small_train.take(300), epochs=2, quiet=True, callbacks=[callback])
    saved = sorted(p.name for p in tmp_path.glob("epoch-*"))
    assert saved[0] == "epoch-0001"


def test_bad_checkpoints_give_one_clear_error(tmp_path: Path, small_train: ImageDataset) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        fit(_model(), small_train.take(64), resume_from=tmp_path / "nope", quiet=True)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="holds no checkpoint"):
        fit(_model(), small_train.take(64), resume_from=tmp_path / "empty", quiet=True)

    good = tmp_path / "good"
    fit(_model(), small_train.take(64), epochs=1, quiet=True, callbacks=[ModelCheckpoint(good)])
    (good / "epoch-0001" / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="is corrupt"):
        fit(_model(), small_train.take(64), epochs=2, resume_from=good, quiet=True)

    other = tmp_path / "other"
    fit(_model(), small_train.take(64), epochs=1, quiet=True, callbacks=[ModelCheckpoint(other)])
    torch.manual_seed(0)
    cnn = create_model("cnn")
    with pytest.raises(CheckpointError, match="do not match the model"):
        fit(cnn, small_train.take(64), epochs=2, resume_from=other, quiet=True)
