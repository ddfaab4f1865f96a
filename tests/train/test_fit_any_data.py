"""`fit` on the user's own data and task: tables, regression, several inputs of other
dtypes, a transformers classifier, the user's loss and metrics, Datasets and DataLoaders,
recipe names, and a model that does not fit the task (issue 13)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from jiasu.core.errors import ConfigError
from jiasu.core.task import Task
from jiasu.data.examples import Examples, TrainingData
from jiasu.train import fit
from jiasu.train.evaluate import measure
from jiasu.train.losses import task_loss
from jiasu.train.objective import Objective


def _table(n: int = 256, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """y = x·w + 3 + noise on 8 features: a linear table with a known answer."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    w = torch.linspace(-2.0, 2.0, 8)
    return x, x @ w + 3.0 + 0.05 * torch.randn(n, generator=g)


def _mlp(inputs: int, outputs: int, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(inputs, 32), nn.ReLU(), nn.Linear(32, outputs))


def test_a_regression_mlp_learns_a_linear_table() -> None:
    x, y = _table()
    history = fit(_mlp(8, 1), (x, y), epochs=15, batch_size=16, lr=1e-2,
                  validation_split=0.25, quiet=True)  # fmt: skip
    last = history.last
    variance = float(y[192:].var())
    assert last.train_accuracy is None and last.val_accuracy is None  # no classes here
    assert set(last.metrics) == {"train_loss", "val_loss", "val_mse", "val_mae", "val_r2"}
    assert last.metrics["val_mse"] < 0.02 * variance  # far below predicting the mean
    assert last.metrics["val_r2"] > 0.98
    assert last.val_loss == pytest.approx(last.metrics["val_mse"], rel=1e-5)  # MSE loss


class TwoInputs(nn.Module):
    """Float features (N, 4) and an int64 category id (N,) → 3 class scores."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(3, 8)
        self.head = nn.Sequential(nn.Linear(4 + 8, 32), nn.ReLU(), nn.Linear(32, 3))

    def forward(self, features: torch.Tensor, category: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([features, self.embed(category)], dim=1))


def _two_input_data(n: int = 400) -> tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    features = torch.randn(n, 4, generator=g)
    category = torch.randint(0, 3, (n,), generator=g)
    # the class is the category, shifted by one where the first feature is positive
    return (features, category), (category + (features[:, 0] > 0).long()) % 3


def test_a_three_class_classifier_of_a_float_and_an_int64_input() -> None:
    torch.manual_seed(0)
    inputs, y = _two_input_data()
    history = fit(TwoInputs(), (inputs, y), epochs=10, lr=1e-2, batch_size=32,
                  validation_split=0.25, quiet=True)  # fmt: skip
    last = history.last
    assert last.val_accuracy is not None and last.val_accuracy > 0.9
    assert "val_top5_accuracy" not in last.metrics  # 3 classes: top-5 means nothing
    assert last.train_accuracy == last.metrics["train_accuracy"]


def test_a_tiny_bert_classifier_trains_on_token_ids_and_an_attention_mask() -> None:
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(
        vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=16, num_labels=2,
    )  # fmt: skip
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(config)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 40, (256, 12), generator=g)
    labels = (torch.arange(256) % 2).long()
    ids[labels == 1, :6] = 4  # class 1: token 4 in the first six positions
    mask = torch.ones_like(ids)
    mask[:, 10:] = 0  # padding at the end
    data = ({"input_ids": ids, "attention_mask": mask}, labels)
    history = fit(model, data, epochs=3, batch_size=32, lr=1e-2, quiet=True)
    losses = [r.train_loss for r in history.epochs]
    assert losses[-1] < 0.5 * losses[0], losses
    assert history.last.train_accuracy is not None and history.last.train_accuracy > 0.9


def test_the_users_loss_and_metric_are_used_and_reported() -> None:
    x, y = _table()
    calls = {"loss": 0}

    def huber(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        calls["loss"] += 1
        return F.smooth_l1_loss(outputs.squeeze(1), targets)

    def within_half(outputs: torch.Tensor, targets: torch.Tensor) -> float:
        return float(((outputs.squeeze(1) - targets).abs() < 0.5).float().mean())

    model = _mlp(8, 1)
    history = fit(model, (x, y), epochs=3, lr=1e-2, validation_split=0.25, quiet=True,
                  loss=huber, metrics={"within_half": within_half})  # fmt: skip
    assert calls["loss"] >= 3 * 6  # every training step (192 samples, batch 32)
    record = history.last
    held_out = Examples.from_arrays(x[192:], y[192:])
    with torch.no_grad():
        outputs = model(x[192:])
    assert record.val_loss == pytest.approx(float(huber(outputs, y[192:])), rel=1e-5)
    assert record.metrics["val_within_half"] == pytest.approx(within_half(outputs, y[192:]))
    assert "val_mse" in record.metrics  # the task's metrics stay beside the user's
    again = measure(model, held_out, Objective(Task("regression", "mse"), huber,
                                               {"within_half": within_half}))  # fmt: skip
    assert again["within_half"] == record.metrics["val_within_half"]


class _Pairs(Dataset[tuple[dict[str, torch.Tensor], torch.Tensor]]):
    """A map-style Dataset yielding ({"features", "category"}, target), one sample at a time."""

    def __init__(self) -> None:
        (self.features, self.category), self.y = _two_input_data(300)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        return {"features": self.features[i], "category": self.category[i]}, self.y[i]


def test_a_dataloader_and_a_dataset_are_streamed() -> None:
    x, y = _table(256)
    loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True,
                        generator=torch.Generator().manual_seed(0))  # fmt: skip
    history = fit(_mlp(8, 1), loader, epochs=2, lr=1e-2, quiet=True, recipe="fast",
                  validation_data=DataLoader(TensorDataset(x, y), batch_size=100))  # fmt: skip
    assert [r.samples for r in history.epochs] == [256, 256]
    assert history.last.metrics["val_mse"] > 0
    skipped = {s["name"]: s["reason"] for s in history.techniques_skipped}
    assert "stream from a DataLoader" in skipped["device_data"]
    # a Dataset of dict samples: batched by jiasu, passed to the model by name
    torch.manual_seed(0)
    history = fit(TwoInputs(), _Pairs(), epochs=2, batch_size=30, validation_split=0.2,
                  quiet=True)  # fmt: skip
    assert history.last.samples == 240 and history.last.val_accuracy is not None
    with pytest.raises(ConfigError, match="a DataLoader cannot be split for validation"):
        fit(_mlp(8, 1), loader, validation_split=0.2, quiet=True)


def test_recipe_names_resolve() -> None:
    x, y = _table(256)
    history = fit(_mlp(8, 1), (x, y), epochs=1, recipe="fast", quiet=True)
    assert "device_data()" in history.techniques_applied
    with pytest.raises(ConfigError, match="unknown recipe"):
        fit(_mlp(8, 1), (x, y), recipe="fastest", quiet=True)


@pytest.mark.slow
def test_recipe_auto_as_a_string_probes_and_trains() -> None:
    x, y = _table(256)
    history = fit(_mlp(8, 1), (x, y), epochs=1, recipe="auto", quiet=True)
    assert history.techniques_applied  # the probed recipe was trained with
    names = " ".join(history.techniques_applied + [s["name"] for s in history.techniques_skipped])
    assert "label_smoothing" not in names  # a regression has no classes to smooth
    assert any(s["reason"].startswith("auto: ") for s in history.techniques_skipped)


def test_a_model_that_does_not_fit_the_task_is_one_sentence_before_training() -> None:
    x, y = _table(64)
    classes = (torch.arange(64) % 2).long()
    ten_for_two = r"gives 10 scores per sample but the targets hold 2 classes \(0 to 1\); give"
    with pytest.raises(ConfigError, match=ten_for_two + " the model a 2-way output layer"):
        fit(_mlp(8, 10), (x, classes), quiet=True)
    with pytest.raises(ConfigError, match="the model gives 10 scores per sample but the data "
                       "has 2 classes; give the model a 2-way output layer"):  # fmt: skip
        data = TrainingData(Examples.from_arrays(x, classes), None, None,
                            Task("classification", "accuracy", 2), ("a", "b"), "table")  # fmt: skip
        fit(_mlp(8, 10), data, quiet=True)
    with pytest.raises(ConfigError, match=r"the model gives outputs of shape \(N, 3\) but the "
                       r"regression targets are \(N,\); give the model 1 output"):  # fmt: skip
        fit(_mlp(8, 3), (x, y), quiet=True)
    with pytest.raises(ConfigError, match=r"gives outputs of shape \(2, 1\) .* a classification "
                       r"needs one score per class"):  # fmt: skip
        fit(_mlp(8, 1), (x, classes), quiet=True)
    with pytest.raises(ConfigError, match="task 'ranking' is unknown"):
        fit(_mlp(8, 1), (x, y), task="ranking", quiet=True)
    # with the classes named, a model for more classes than the data holds trains
    history = fit(_mlp(8, 10), (x, classes), task=Task("classification", "accuracy", 10),
                  epochs=1, quiet=True)  # fmt: skip
    assert history.last.train_accuracy is not None


def test_the_task_losses_are_torchs_own() -> None:
    g = torch.Generator().manual_seed(0)
    logits, classes = torch.randn(16, 7, generator=g), torch.randint(0, 7, (16,), generator=g)
    classification = Task("classification", "accuracy", 7)
    assert torch.equal(task_loss(classification)(logits, classes), F.cross_entropy(logits, classes))
    assert torch.equal(
        task_loss(classification, 0.1)(logits, classes),
        F.cross_entropy(logits, classes, label_smoothing=0.1),
    )
    outputs, values = torch.randn(16, 1, generator=g), torch.randn(16, generator=g)
    regression = Task("regression", "mse")
    expected = F.mse_loss(outputs, values[:, None])  # (N,) targets against (N, 1) outputs
    assert torch.equal(task_loss(regression)(outputs, values), expected)
    # and what fit reports is that loss on the held-out data
    x, y = _table(128)
    model = _mlp(8, 1)
    history = fit(model, (x, y), epochs=1, validation_split=0.25, quiet=True)
    with torch.no_grad():
        reference = F.mse_loss(model(x[96:]), y[96:, None])
    assert history.last.val_loss == pytest.approx(float(reference), rel=1e-6)


def test_an_image_dataset_lacking_some_classes_still_trains_a_ten_class_model() -> None:
    from jiasu.data import ImageDataset
    from jiasu.models import create_model

    images = torch.rand(40, 1, 28, 28)
    subset = ImageDataset(images, torch.arange(40) % 5, "digits 0 to 4")  # no 5 to 9 here
    torch.manual_seed(0)
    history = fit(create_model("mlp"), subset, epochs=1, batch_size=8, quiet=True)
    assert history.last.samples == 40


@pytest.mark.parametrize(("metric", "value"), [("r2", 0.9), ("mse", 0.5)])
def test_a_regression_stops_at_a_target_metric(metric: str, value: float) -> None:
    """R² is reached from below, an error from above; the run stops at the first check
    that meets it, and the curve holds that metric's values."""
    x, y = _table(512)
    history = fit(_mlp(8, 1), (x[:384], y[:384]), epochs=50, batch_size=16, lr=1e-2,
                  target_accuracy=value, target_metric=metric, target_data=(x[384:], y[384:]),
                  quiet=True)  # fmt: skip
    assert history.stopped_early and len(history.epochs) < 50
    assert history.time_to_target_s is not None and history.target_metric == metric
    values = [v for _, v in history.accuracy_curve]
    met = [v >= value if metric == "r2" else v <= value for v in values]
    assert met[-1] and not any(met[:-1])  # stopped at the first check that met it


def test_a_target_metric_the_task_does_not_report_is_one_sentence() -> None:
    x, y = _table(64)
    with pytest.raises(ConfigError, match=r"'accuracy' is not one this regression reports; use "
                       r"one of loss, mse, mae, r2"):  # fmt: skip
        fit(_mlp(8, 1), (x, y), epochs=1, target_accuracy=0.9, target_data=(x, y), quiet=True)
    with pytest.raises(ConfigError, match="must be positive"):
        fit(_mlp(8, 1), (x, y), target_accuracy=-1.0, target_metric="mse", target_data=(x, y))
    with pytest.raises(ConfigError, match="at most 1"):
        fit(_mlp(8, 1), (x, y), target_accuracy=1.5, target_metric="r2", target_data=(x, y))
