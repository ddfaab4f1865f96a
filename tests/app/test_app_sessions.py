"""The sessions of `jiasu.app`, called directly as a Python caller would: plain values in, a
result out, progress only through the `log` given (the CLI tests run them through the CLI)."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest

from jiasu.app.demo import DemoResult, run_demo, run_demo_session, save_demo_outputs
from jiasu.app.doctor import diagnose
from jiasu.app.report import combine_results, publish_report
from jiasu.app.train import resolve_train_model, run_train_session, save_train_outputs
from jiasu.core.errors import CheckpointError, ConfigError
from jiasu.data import DatasetSplits
from jiasu.models import load_model_dir
from jiasu.train.model_arg import ExternalModel
from jiasu.train.recipes import baseline
from jiasu.train.session import TrainSettings


@pytest.fixture(scope="module")
def demo(mnist: DatasetSplits) -> DemoResult:
    """Both sides of the demo on 128 training and 256 test images, one epoch each."""
    small = dataclasses.replace(mnist, train=mnist.train.take(128), test=mnist.test.take(256))
    return run_demo(small, epochs=1, quiet=True, accelerated_recipe=baseline())


def test_doctor_finds_the_machine_its_software_and_what_applies() -> None:
    found = diagnose().to_dict()
    assert found["kind"] == "jiasu.doctor" and found["cpu"]["logical_cpus"] >= 1
    packages = {p["name"]: p for p in found["packages"]}
    assert packages["torch"]["version"]
    techniques = {t["name"]: t for t in found["techniques"]}
    assert techniques["threads"]["applies"] is True
    assert "onnxruntime" in techniques  # the inference backends are listed too


def test_demo_outputs_are_written_and_logged(demo: DemoResult, tmp_path: Path) -> None:
    lines: list[str] = []
    out = tmp_path / "demo.json"
    save_demo_outputs(demo, json_path=out, log=lines.append)
    assert lines == [f"wrote {out}"]
    data = json.loads(out.read_text())
    assert data["kind"] == "demo" and data["baseline"]["epochs"] == 1


def test_demo_session_checks_outputs_before_reading_data(tmp_path: Path) -> None:
    lines: list[str] = []
    with pytest.raises(ConfigError, match="--json"):
        run_demo_session(json_path=tmp_path, data_dir=tmp_path / "no data", log=lines.append)
    assert lines == []  # nothing loaded, nothing trained


def test_report_combines_and_publishes(demo: DemoResult, tmp_path: Path) -> None:
    result = tmp_path / "demo.json"
    save_demo_outputs(demo, json_path=result)
    out = tmp_path / "report.json"
    report = combine_results([result], title="two sides", json_path=out)
    lines: list[str] = []
    publish_report(report, json_path=out, log=lines.append)
    assert lines == [f"wrote {out}"]
    assert json.loads(out.read_text())["title"] == "two sides"


def test_train_session_trains_saves_and_writes(mnist_dir: Path, tmp_path: Path) -> None:
    lines: list[str] = []
    model_dir, out = tmp_path / "model", tmp_path / "train.json"
    result = run_train_session(
        "mlp", "baseline", TrainSettings(epochs=1), train_samples=512, data_dir=mnist_dir,
        save=model_dir, json_path=out, quiet=True, log=lines.append,
    )  # fmt: skip
    save_train_outputs(result, json_path=out, save=model_dir, log=lines.append)
    assert lines[0].startswith("data: MNIST")
    assert lines[-2:] == [f"wrote {out}", f"saved model to {model_dir}"]
    assert result.test_accuracy > 0.5
    assert json.loads(out.read_text())["test_accuracy"] == result.test_accuracy
    assert load_model_dir(model_dir).spec.name == "mlp"


def test_train_model_from_a_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A factory's model is run once on MNIST images before any data is read: the wrong
    number of classes is one sentence; a torch model trains but cannot be --saved."""
    (tmp_path / "my_nets.py").write_text(
        "from torch import nn\n"
        "def three():\n    return nn.Sequential(nn.Flatten(), nn.Linear(784, 3))\n"
        "def ten():\n    return nn.Sequential(nn.Flatten(), nn.Linear(784, 10))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "my_nets", raising=False)
    with pytest.raises(ConfigError, match=r"returned shape \(2, 3\).*not \(2, 10\)"):
        resolve_train_model("my_nets:three")
    spec = resolve_train_model("my_nets:ten")
    assert isinstance(spec, ExternalModel) and spec.to_dict()["external"] is True
    assert spec.build() is not spec.build()  # a fresh module each time
    with pytest.raises(ConfigError, match="--save needs a registry model, a Keras model or"):
        spec.save(spec.build(), tmp_path / "out")  # no signature and task to save with it
    from jiasu.core.signature import InputSignature
    from jiasu.core.task import Task
    from jiasu.models import load_model_dir

    task = Task("classification", "accuracy", 10)
    signature = InputSignature.from_shape((1, 28, 28))
    spec.save(spec.build(), tmp_path / "out", signature=signature, task=task)
    with pytest.raises(CheckpointError, match="--trust-code"):
        load_model_dir(tmp_path / "out")  # rebuilding it imports my_nets: only when trusted
    saved = load_model_dir(tmp_path / "out", trust_code=True)
    assert saved.signature == signature and saved.task == task
